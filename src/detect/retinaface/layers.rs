//! The pieces every RetinaFace block is built from (net.py's `conv_bn`, `conv_bn_no_relu`,
//! `conv_bn1X1` and the halves of `conv_dw`; torchvision's bias-free convs): a convolution, an
//! eval-mode BatchNorm and an optional (leaky) ReLU, each under its checkpoint key.

use crate::error::TchResult;
use tch::{Tensor, nn};

/// torchvision and net.py both use BatchNorm2d's default epsilon.
const BN_EPS: f64 = 1e-5;

/// `nn.Conv2d` with `padding = kernel / 2`: keys `weight` [out, in / groups, k, k] and, for the
/// heads only, `bias` [out].
#[derive(Debug)]
pub struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
    groups: i64,
}

impl Conv {
    pub fn new(p: nn::Path, in_ch: i64, out_ch: i64, kernel: i64, stride: i64) -> Self {
        Self::build(p, in_ch, out_ch, kernel, stride, 1, false)
    }

    /// A depthwise 3x3 conv (`groups = channels`), MobileNet's spatial half of `conv_dw`.
    pub fn depthwise(p: nn::Path, channels: i64, stride: i64) -> Self {
        Self::build(p, channels, channels, 3, stride, channels, false)
    }

    /// A 1x1 conv with a bias, the detection heads' only layer.
    pub fn with_bias(p: nn::Path, in_ch: i64, out_ch: i64) -> Self {
        Self::build(p, in_ch, out_ch, 1, 1, 1, true)
    }

    fn build(p: nn::Path, in_ch: i64, out_ch: i64, kernel: i64, stride: i64, groups: i64, bias: bool) -> Self {
        let weight = p.var("weight", &[out_ch, in_ch / groups, kernel, kernel], nn::Init::Const(0.0));
        let bias = bias.then(|| p.var("bias", &[out_ch], nn::Init::Const(0.0)));
        Conv { weight, bias, stride, padding: kernel / 2, groups }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let (s, p) = (self.stride, self.padding);
        x.f_conv2d(&self.weight, self.bias.as_ref(), [s, s], [p, p], [1, 1], self.groups)
    }
}

/// `nn.BatchNorm2d` in eval mode, from its running statistics. Not folded into the conv, so the
/// arithmetic is the reference's own (the goldens are met to ~1e-5, their own rounding error).
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        let z = nn::Init::Const(0.0);
        BatchNorm {
            weight: p.var("weight", &[channels], nn::Init::Const(1.0)),
            bias: p.var("bias", &[channels], z),
            running_mean: p.var("running_mean", &[channels], z),
            running_var: p.var("running_var", &[channels], nn::Init::Const(1.0)),
        }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_batch_norm(Some(&self.weight), Some(&self.bias), Some(&self.running_mean), Some(&self.running_var), false, 0.1, BN_EPS, true)
    }
}

/// What follows the BatchNorm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// `conv_bn_no_relu`, and the last BN of a bottleneck before its residual add.
    Linear,
    Relu,
    /// `nn.LeakyReLU(slope)`; net.py uses 0.1 in MobileNet and wherever `out_channels <= 64`.
    Leaky(f64),
}

impl Act {
    /// net.py's rule for the FPN and SSH: `leaky = 0.1 if out_channels <= 64 else 0`.
    pub fn for_channels(out_channels: i64) -> Act {
        if out_channels <= 64 { Act::Leaky(0.1) } else { Act::Relu }
    }

    /// Applies the activation, in place where libtorch has an in-place form.
    pub fn apply(self, mut x: Tensor) -> TchResult<Tensor> {
        match self {
            Act::Linear => Ok(x),
            Act::Relu => {
                let _ = x.f_relu_()?;
                Ok(x)
            }
            Act::Leaky(slope) => {
                // tch's leaky_relu has no slope argument; prelu with one shared weight is the same
                // function (x > 0 ? x : slope * x).
                let w = Tensor::f_from_slice(&[slope as f32])?.f_to_device(x.device())?.f_to_kind(x.kind())?;
                x.f_prelu(&w)
            }
        }
    }
}

/// Conv, BatchNorm, activation.
#[derive(Debug)]
pub struct ConvBn {
    conv: Conv,
    bn: BatchNorm,
    act: Act,
}

impl ConvBn {
    pub fn new(conv: Conv, bn: BatchNorm, act: Act) -> Self {
        ConvBn { conv, bn, act }
    }

    /// An `nn.Sequential(conv, bn[, act])`: keys `0.weight` and `1.*` under `p`.
    pub fn seq(p: nn::Path, in_ch: i64, out_ch: i64, kernel: i64, stride: i64, act: Act) -> Self {
        ConvBn::new(Conv::new(&p / "0", in_ch, out_ch, kernel, stride), BatchNorm::new(&p / "1", out_ch), act)
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        // Each intermediate is dropped as soon as it is used: the peak memory is two maps.
        let c = self.conv.forward(x)?;
        let y = self.bn.forward(&c)?;
        drop(c);
        self.act.apply(y)
    }
}
