//! The layers the three MTCNN networks share. Every conv has stride 1, no padding and a bias; every
//! max-pool rounds up (`ceil_mode=True`), which the R-Net/O-Net flatten sizes depend on.

use crate::error::TchResult;
use tch::{Tensor, nn};

/// `nn.Conv2d(in, out, k)`: keys `weight` [out, in, k, k] and `bias` [out].
#[derive(Debug)]
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
}

impl Conv {
    pub fn new(p: nn::Path, in_ch: i64, out_ch: i64, kernel: i64) -> Self {
        let weight = p.var("weight", &[out_ch, in_ch, kernel, kernel], nn::Init::Const(0.0));
        let bias = p.var("bias", &[out_ch], nn::Init::Const(0.0));
        Conv { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_conv2d(&self.weight, Some(&self.bias), [1, 1], [0, 0], [1, 1], 1)
    }
}

/// `nn.Linear(in, out)`: keys `weight` [out, in] and `bias` [out].
#[derive(Debug)]
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    pub fn new(p: nn::Path, in_dim: i64, out_dim: i64) -> Self {
        let weight = p.var("weight", &[out_dim, in_dim], nn::Init::Const(0.0));
        let bias = p.var("bias", &[out_dim], nn::Init::Const(0.0));
        Dense { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_linear(&self.weight, Some(&self.bias))
    }
}

/// `nn.PReLU(channels)`: one slope per channel (dim 1), key `weight` [channels].
#[derive(Debug)]
pub struct PRelu {
    weight: Tensor,
}

impl PRelu {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        PRelu { weight: p.var("weight", &[channels], nn::Init::Const(0.25)) }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_prelu(&self.weight)
    }
}

/// Max-pool without padding, rounding the output size up.
pub fn max_pool(x: &Tensor, kernel: i64, stride: i64) -> TchResult<Tensor> {
    x.f_max_pool2d([kernel, kernel], [stride, stride], [0, 0], [1, 1], true)
}

/// Flattens [N, C, H, W] in (W, H, C) order. The dense layers were converted from TF, which ran on
/// transposed images and flattened NHWC; the convs were transposed back, the dense layers were not.
pub fn flatten_tf(x: &Tensor) -> TchResult<Tensor> {
    let n = x.size()[0];
    x.f_permute([0, 3, 2, 1])?.f_contiguous()?.f_view([n, -1])
}

/// Class probabilities over dim 1; channel 1 is P(face).
pub fn softmax(x: &Tensor) -> TchResult<Tensor> {
    x.f_softmax(1, x.kind())
}
