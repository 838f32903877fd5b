//! Equalized-learning-rate layers (Karras et al., "Progressive Growing of GANs", 2018): weights are
//! stored unscaled and multiplied by `lr_mul / sqrt(fan_in)` at run time, exactly as GPEN stores them.

use super::ops;
use crate::error::TchResult;
use tch::{Kind, Tensor, nn};

/// `EqualLinear(in, out, lr_mul, bias_init, activation)`; keys `weight` [out, in] and `bias` [out].
#[derive(Debug)]
pub struct EqualLinear {
    weight: Tensor,
    bias: Tensor,
    scale: f64,
    lr_mul: f64,
    activate: bool,
}

impl EqualLinear {
    pub fn new(p: nn::Path, in_dim: i64, out_dim: i64, lr_mul: f64, bias_init: f64, activate: bool) -> Self {
        let weight = p.var("weight", &[out_dim, in_dim], nn::Init::Randn { mean: 0.0, stdev: 1.0 / lr_mul });
        let bias = p.var("bias", &[out_dim], nn::Init::Const(bias_init));
        EqualLinear { weight, bias, scale: lr_mul / (in_dim as f64).sqrt(), lr_mul, activate }
    }

    /// Always fp32: these small layers are the ones that overflow in half precision.
    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let x = x.f_to_kind(Kind::Float)?;
        let weight = self.weight.f_mul_scalar(self.scale)?;
        let bias = self.bias.f_mul_scalar(self.lr_mul)?;
        if self.activate { ops::fused_leaky_relu(x.f_linear(&weight, None::<Tensor>)?, &bias) } else { x.f_linear(&weight, Some(&bias)) }
    }
}

/// GPEN's `ConvLayer(in, out, k, downsample)`: an `nn.Sequential` of an optional `Blur`, an
/// `EqualConv2d` without bias and a `FusedLeakyReLU`, so its keys are `0.kernel`, `1.weight`,
/// `2.bias` when downsampling and `0.weight`, `1.bias` otherwise.
#[derive(Debug)]
pub struct ConvLayer {
    blur_kernel: Option<Tensor>,
    weight: Tensor,
    bias: Tensor,
    scale: f64,
    padding: i64,
    stride: i64,
}

impl ConvLayer {
    pub fn new(p: nn::Path, in_ch: i64, out_ch: i64, kernel: i64, downsample: bool) -> Self {
        let mut index = 0;
        let mut next = || {
            index += 1;
            (index - 1).to_string()
        };
        let blur_kernel = downsample.then(|| ops::kernel_buffer(&p.sub(next()), 1.0));
        let weight = p.sub(next()).var("weight", &[out_ch, in_ch, kernel, kernel], nn::Init::Randn { mean: 0.0, stdev: 1.0 });
        let bias = p.sub(next()).var("bias", &[out_ch], nn::Init::Const(0.0));
        // Downsampling: blur with pad (2, 2), then a stride-2 convolution without padding
        // (p = (4 - 2) + (k - 1) in GPEN's ConvLayer).
        let (padding, stride) = if downsample { (0, 2) } else { (kernel / 2, 1) };
        let scale = 1.0 / ((in_ch * kernel * kernel) as f64).sqrt();
        ConvLayer { blur_kernel, weight, bias, scale, padding, stride }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let blurred;
        let x = match &self.blur_kernel {
            Some(k) => {
                blurred = ops::blur(x, k, 2)?;
                &blurred
            }
            None => x,
        };
        let weight = self.weight.f_mul_scalar(self.scale)?.f_to_kind(x.kind())?;
        let (s, p) = (self.stride, self.padding);
        let y = x.f_conv2d(&weight, None::<Tensor>, [s, s], [p, p], [1, 1], 1)?;
        ops::fused_leaky_relu(y, &self.bias)
    }
}
