//! Tensor operations the networks share that tch does not offer as such: channels-last memory and
//! LeakyReLU with a slope, in place.

use crate::error::TchResult;
use tch::Tensor;

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
