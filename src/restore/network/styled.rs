//! The style-modulated layers of StyleGAN2 (Karras et al., "Analyzing and Improving the Image Quality
//! of StyleGAN", 2020) with GPEN's change: the "noise" input is an encoder feature map that is
//! concatenated to the convolution output instead of added (Yang et al., "GAN Prior Embedded Network
//! for Blind Face Restoration in the Wild", CVPR 2021).

use super::equalized::EqualLinear;
use super::ops;
use crate::error::TchResult;
use tch::{Kind, Tensor, nn};

/// `ModulatedConv2d(in, out, k, style_dim, demodulate, upsample)`.
///
/// The reference scales one weight per sample and runs a grouped convolution. Here the style scales
/// the *input* channels, one ordinary convolution with the shared weight serves the whole batch, and
/// demodulation rescales the *output* channels (gpen.md §2.5). That is the same linear map, and the
/// form that lets a batch of faces share one cuDNN/oneDNN call.
#[derive(Debug)]
pub struct ModulatedConv2d {
    weight: Tensor,
    modulation: EqualLinear,
    blur_kernel: Option<Tensor>,
    scale: f64,
    padding: i64,
    demodulate: bool,
}

impl ModulatedConv2d {
    pub fn new(p: nn::Path, in_ch: i64, out_ch: i64, kernel: i64, style_dim: i64, demodulate: bool, upsample: bool) -> Self {
        let weight = p.var("weight", &[1, out_ch, in_ch, kernel, kernel], nn::Init::Randn { mean: 0.0, stdev: 1.0 });
        let modulation = EqualLinear::new(&p / "modulation", style_dim, in_ch, 1.0, 1.0, false);
        let blur_kernel = upsample.then(|| ops::kernel_buffer(&(&p / "blur"), 4.0));
        let scale = 1.0 / ((in_ch * kernel * kernel) as f64).sqrt();
        ModulatedConv2d { weight, modulation, blur_kernel, scale, padding: kernel / 2, demodulate }
    }

    pub fn forward(&self, x: &Tensor, style: &Tensor) -> TchResult<Tensor> {
        let kind = x.kind();
        let batch = x.size()[0];
        // Style and demodulation factors are tiny ([B, C]) and computed in fp32.
        let s = self.modulation.forward(style)?.f_mul_scalar(self.scale)?; // [B, in]
        let weight = self.weight.f_squeeze_dim(0)?; // [out, in, k, k]
        let d = if self.demodulate {
            // d[b, o] = rsqrt(sum_i s[b, i]^2 * sum_{kh, kw} W[o, i]^2 + 1e-8)
            let w_sq = weight.f_square()?.f_sum_dim_intlist([2, 3].as_slice(), false, Kind::Float)?; // [out, in]
            Some(s.f_square()?.f_matmul(&w_sq.f_tr()?)?.f_add_scalar(1e-8)?.f_rsqrt()?) // [B, out]
        } else {
            None
        };
        let y = if batch == 1 {
            // One face: fold style and demodulation into the (small) weight, as the reference does,
            // which saves two passes over the (large) activations.
            let mut w = weight.f_mul(&s.f_view([1, -1, 1, 1])?)?;
            if let Some(d) = &d {
                w = w.f_mul(&d.f_view([-1, 1, 1, 1])?)?;
            }
            self.convolve(x, &w.f_to_kind(kind)?)?
        } else {
            let modulated = x.f_mul(&s.f_to_kind(kind)?.f_view([batch, -1, 1, 1])?)?;
            let mut y = self.convolve(&modulated, &weight.f_to_kind(kind)?)?;
            drop(modulated);
            if let Some(d) = &d {
                let _ = y.f_mul_(&d.f_to_kind(kind)?.f_view([batch, -1, 1, 1])?)?;
            }
            y
        };
        match &self.blur_kernel {
            // [B, out, 2H+1, 2W+1] -> blur with pad (1, 1) -> [B, out, 2H, 2W]
            Some(k) => ops::blur(&y, k, 1),
            None => Ok(y),
        }
    }

    /// The plain or (for upsampling) stride-2 transposed convolution with weight `w` [out, in, k, k].
    fn convolve(&self, x: &Tensor, w: &Tensor) -> TchResult<Tensor> {
        match &self.blur_kernel {
            // Transposed convolution takes its weight as [in, out, k, k].
            Some(_) => x.f_conv_transpose2d(&w.f_transpose(0, 1)?, None::<Tensor>, [2, 2], [0, 0], [0, 0], 1, [1, 1]),
            None => x.f_conv2d(w, None::<Tensor>, [1, 1], [self.padding, self.padding], [1, 1], 1),
        }
    }
}

/// `StyledConv`: modulated convolution, GPEN's concatenating `NoiseInjection`, `FusedLeakyReLU`.
/// Keys: `conv.*`, `noise.weight` [1], `activate.bias` [2 * out].
#[derive(Debug)]
pub struct StyledConv {
    conv: ModulatedConv2d,
    noise_weight: Tensor,
    activate_bias: Tensor,
}

impl StyledConv {
    pub fn new(p: nn::Path, in_ch: i64, out_ch: i64, style_dim: i64, upsample: bool) -> Self {
        let conv = ModulatedConv2d::new(&p / "conv", in_ch, out_ch, 3, style_dim, true, upsample);
        let noise_weight = (&p / "noise").var("weight", &[1], nn::Init::Const(0.0));
        // The activation sees the concatenation, hence twice the channels.
        let activate_bias = (&p / "activate").var("bias", &[2 * out_ch], nn::Init::Const(0.0));
        StyledConv { conv, noise_weight, activate_bias }
    }

    /// `feature` is the encoder output at this resolution with `out` channels.
    pub fn forward(&self, x: &Tensor, style: &Tensor, feature: &Tensor) -> TchResult<Tensor> {
        let y = self.conv.forward(x, style)?;
        let noise = feature.f_mul(&self.noise_weight.f_to_kind(feature.kind())?)?;
        let y = Tensor::f_cat(&[y, noise], 1)?;
        ops::fused_leaky_relu(y, &self.activate_bias)
    }
}

/// `ToRGB(in, upsample)`: a 1x1 modulated convolution without demodulation, a bias, and the
/// upsampled skip image of the previous resolution added.
#[derive(Debug)]
pub struct ToRgb {
    conv: ModulatedConv2d,
    bias: Tensor,
    upsample_kernel: Option<Tensor>,
}

impl ToRgb {
    pub fn new(p: nn::Path, in_ch: i64, style_dim: i64, upsample: bool) -> Self {
        let upsample_kernel = upsample.then(|| ops::kernel_buffer(&(&p / "upsample"), 4.0));
        let conv = ModulatedConv2d::new(&p / "conv", in_ch, 3, 1, style_dim, false, false);
        let bias = p.var("bias", &[1, 3, 1, 1], nn::Init::Const(0.0));
        ToRgb { conv, bias, upsample_kernel }
    }

    pub fn forward(&self, x: &Tensor, style: &Tensor, skip: Option<&Tensor>) -> TchResult<Tensor> {
        let mut y = self.conv.forward(x, style)?;
        let _ = y.f_add_(&self.bias.f_to_kind(y.kind())?)?;
        if let (Some(skip), Some(kernel)) = (skip, &self.upsample_kernel) {
            let _ = y.f_add_(&ops::upsample2x(skip, kernel)?)?;
        }
        Ok(y)
    }
}
