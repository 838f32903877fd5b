//! The parameter-free operations of StyleGAN2/GPEN written with stock libtorch ops, so no custom
//! CUDA kernel is needed (the reference's `upfirdn2d` and `fused_leaky_relu`, gpen.md §2.2).
//!
//! Every function is fallible: an allocation failure must reach the batch planner as an error.

use crate::error::TchResult;
use tch::{Kind, Tensor};

/// `sqrt(2)`: the gain of GPEN's fused leaky ReLU.
const LRELU_GAIN: f64 = std::f64::consts::SQRT_2;
const LRELU_SLOPE: f64 = 0.2;

/// `sqrt(2) * leaky_relu(x + bias, 0.2)`, bias broadcast over dimension 1 (`FusedLeakyReLU`).
/// Consumes `x` so the bias add and the gain happen in place on a temporary.
pub fn fused_leaky_relu(mut x: Tensor, bias: &Tensor) -> TchResult<Tensor> {
    let mut shape = vec![1i64; x.dim()];
    shape[1] = -1;
    let bias = bias.f_to_kind(x.kind())?.f_view(shape.as_slice())?;
    let _ = x.f_add_(&bias)?;
    // leaky_relu(z, 0.2) == prelu(z, 0.2) with one shared slope; one kernel, one allocation.
    let slope = Tensor::f_from_slice(&[LRELU_SLOPE as f32])?.f_to(x.device())?.f_to_kind(x.kind())?;
    let mut y = x.f_prelu(&slope)?;
    drop(x);
    let _ = y.f_mul_scalar_(LRELU_GAIN)?;
    Ok(y)
}

/// `x * rsqrt(mean(x^2, dim=1) + 1e-8)`.
pub fn pixel_norm(x: &Tensor) -> TchResult<Tensor> {
    let norm = x.f_square()?.f_mean_dim(1, true, Kind::Float)?.f_add_scalar(1e-8)?.f_rsqrt()?;
    x.f_mul(&norm)
}

/// Per-channel FIR filter with zero padding `pad` on every side: `upfirdn2d(x, k, up=1, down=1,
/// pad=(pad, pad))`. upfirdn2d is a true convolution, so the kernel is flipped for libtorch's
/// cross-correlation (a no-op for GPEN's symmetric kernels, kept so any loaded kernel is exact).
pub fn blur(x: &Tensor, kernel: &Tensor, pad: i64) -> TchResult<Tensor> {
    let channels = x.size()[1];
    let k = kernel.f_flip([0, 1])?;
    let weight = depthwise_weight(&k, channels, x.kind())?;
    x.f_conv2d(&weight, None::<Tensor>, [1, 1], [pad, pad], [1, 1], channels)
}

/// `upfirdn2d(x, k, up=2, pad=(2, 1))` for GPEN's ToRGB skip path (`Upsample`), as one depthwise
/// transposed convolution (stride 2, padding 1): the zero insertion, padding and filtering at once.
/// Transposed convolution applies the kernel unflipped, which is exactly upfirdn2d's convolution.
pub fn upsample2x(x: &Tensor, kernel: &Tensor) -> TchResult<Tensor> {
    let channels = x.size()[1];
    let weight = depthwise_weight(kernel, channels, x.kind())?;
    x.f_conv_transpose2d(&weight, None::<Tensor>, [2, 2], [1, 1], [0, 0], channels, [1, 1])
}

fn depthwise_weight(kernel: &Tensor, channels: i64, kind: Kind) -> TchResult<Tensor> {
    let (kh, kw) = (kernel.size()[0], kernel.size()[1]);
    kernel.f_to_kind(kind)?.f_view([1, 1, kh, kw])?.f_repeat([channels, 1, 1, 1])
}

/// Registers GPEN's blur-kernel buffer `kernel` under `p`, filled with [`make_kernel`]`(gain)`.
pub fn kernel_buffer(p: &tch::nn::Path, gain: f64) -> Tensor {
    p.var_copy("kernel", &make_kernel(gain))
}

/// The blur kernel GPEN registers as a buffer: `outer([1,3,3,1], [1,3,3,1]) / 64`, times `gain`
/// (4 where it follows a 2x upsampling, 1 otherwise).
pub fn make_kernel(gain: f64) -> Tensor {
    let k1 = [1.0f32, 3.0, 3.0, 1.0];
    let mut k = [0f32; 16];
    for i in 0..4 {
        for j in 0..4 {
            k[i * 4 + j] = k1[i] * k1[j] / 64.0 * gain as f32;
        }
    }
    Tensor::from_slice(&k).view([4, 4])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// upfirdn2d written out literally (zero insertion, padding, convolution with the flipped
    /// kernel, decimation) — the definition in GPEN's `upfirdn2d_native`.
    fn upfirdn2d_reference(x: &Tensor, k: &Tensor, up: i64, pad0: i64, pad1: i64) -> Tensor {
        let (b, c, h, w) = x.size4().unwrap();
        let z = Tensor::zeros([b, c, h * up, w * up], (Kind::Float, x.device()));
        z.slice(2, 0, h * up, up).slice(3, 0, w * up, up).copy_(x);
        let z = z.constant_pad_nd([pad0, pad1, pad0, pad1]);
        let weight = k.flip([0, 1]).view([1, 1, 4, 4]).repeat([c, 1, 1, 1]);
        z.conv2d(&weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], c)
    }

    #[test]
    fn blur_and_upsample_equal_the_upfirdn2d_definition() {
        tch::manual_seed(1);
        let x = Tensor::randn([2, 3, 7, 9], (Kind::Float, tch::Device::Cpu));
        // An asymmetric kernel, so a missing or extra flip would show.
        let k = Tensor::rand([4, 4], (Kind::Float, tch::Device::Cpu));
        let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);

        let ours = blur(&x, &k, 2).unwrap();
        assert_eq!(ours.size(), [2, 3, 8, 10]);
        assert!(diff(&ours, &upfirdn2d_reference(&x, &k, 1, 2, 2)) < 1e-5);

        let ours = upsample2x(&x, &k).unwrap();
        assert_eq!(ours.size(), [2, 3, 14, 18]);
        assert!(diff(&ours, &upfirdn2d_reference(&x, &k, 2, 2, 1)) < 1e-5);
    }

    #[test]
    fn fused_leaky_relu_adds_bias_then_scales() {
        let x = Tensor::from_slice(&[-1.0f32, 0.5, 2.0, -3.0]).view([1, 2, 2, 1]);
        let b = Tensor::from_slice(&[0.5f32, -1.0]);
        let y = fused_leaky_relu(x, &b).unwrap();
        let got: Vec<f32> = Vec::try_from(y.flatten(0, -1)).unwrap();
        let s2 = std::f32::consts::SQRT_2;
        let want = [-0.5 * 0.2 * s2, 1.0 * s2, 1.0 * s2, -4.0 * 0.2 * s2];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn kernel_matches_gpen_buffer_values() {
        let k = make_kernel(4.0);
        assert!((k.double_value(&[0, 0]) - 4.0 / 64.0).abs() < 1e-9);
        assert!((k.double_value(&[1, 2]) - 36.0 / 64.0).abs() < 1e-9);
        assert!((make_kernel(1.0).sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-6);
    }
}
