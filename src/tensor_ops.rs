//! Tensor operations the networks share that tch does not offer as such: channels-last memory,
//! LeakyReLU with a slope, in place, and an eval-mode BatchNorm that can be folded.

use crate::error::TchResult;
use tch::{Kind, Tensor, nn};

/// `nn.BatchNorm2d` / `nn.BatchNorm1d` in eval mode, under `p`: keys `weight`, `bias`,
/// `running_mean`, `running_var` and `num_batches_tracked` (a training counter the files carry;
/// unused in eval). The parser's and the identity network's norms.
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

/// PyTorch's default BatchNorm epsilon.
const BN_EPS: f64 = 1e-5;

impl BatchNorm {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        let weight = p.var("weight", &[channels], nn::Init::Const(1.0));
        let bias = p.var("bias", &[channels], nn::Init::Const(0.0));
        let mean = p.zeros_no_train("running_mean", &[channels]);
        let var = p.ones_no_train("running_var", &[channels]);
        let _ = p.zeros_no_train("num_batches_tracked", &[]);
        BatchNorm { weight, bias, mean, var }
    }

    /// `x` [N, C] or [N, C, H, W].
    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_batch_norm(Some(&self.weight), Some(&self.bias), Some(&self.mean), Some(&self.var), false, 0.1, BN_EPS, true)
    }

    /// The eval-mode norm as a per-channel affine map `y * scale + shift`, computed in f64 so
    /// weights folded with it carry one rounding.
    pub fn affine(&self) -> TchResult<(Tensor, Tensor)> {
        let f64 = |t: &Tensor| t.f_to_kind(Kind::Double);
        let scale = f64(&self.weight)?.f_div(&f64(&self.var)?.f_add_scalar(BN_EPS)?.f_sqrt()?)?;
        let shift = f64(&self.bias)?.f_sub(&f64(&self.mean)?.f_mul(&scale)?)?;
        Ok((scale, shift))
    }
}

/// `t` [N, C, H, W] with channels-last strides (memory [N, H, W, C]): oneDNN then convolves
/// without reordering each input and output, and elementwise operations, pads and
/// concatenations keep the layout (the parser's and RRDBNet's speed-ups, docs/BENCHMARKS.md).
pub fn channels_last(t: &Tensor) -> TchResult<Tensor> {
    t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])
}

/// LeakyReLU(`slope`) written into `y` itself, bit for bit PReLU's `x > 0 ? x : slope * x` (the
/// slope as f32). tch's `leaky_relu_` takes no slope; ATen's `leaky_relu_backward(g, x, s)` is
/// `x > 0 ? g : g * s`, so with `g = x` and `y` as its output it is the activation, in place (an
/// output that is exactly its input is allowed for elementwise kernels). `y` may be a view.
pub fn leaky_relu_(y: Tensor, slope: f64) -> TchResult<Tensor> {
    let _ = y.f_leaky_relu_backward_grad_input(&y, &y, slope, false)?;
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn leaky_relu_in_place_is_prelu_also_on_a_view() {
        let x = Tensor::randn([1, 6, 5, 5], (Kind::Float, Device::Cpu));
        let want = x.prelu(&Tensor::from_slice(&[0.2f32]));
        assert!(leaky_relu_(x.copy(), 0.2).unwrap().equal(&want));
        let y = channels_last(&x).unwrap();
        let _ = leaky_relu_(y.narrow(1, 1, 3), 0.2).unwrap();
        assert!(y.narrow(1, 1, 3).equal(&want.narrow(1, 1, 3)) && y.narrow(1, 0, 1).equal(&x.narrow(1, 0, 1)));
    }

    #[test]
    fn channels_last_keeps_the_values_and_changes_the_strides() {
        let x = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let y = channels_last(&x).unwrap();
        assert!(y.equal(&x));
        assert_eq!(y.stride(), [60, 1, 15, 3]);
    }
}
