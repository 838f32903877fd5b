//! The two layers of `training/loss/helpers.py` and `model_irse.py` with running state: BatchNorm
//! (2d and 1d, eval mode) and PReLU, under the checkpoint's key names.

use crate::error::TchResult;
use tch::{Tensor, nn};

/// `nn.BatchNorm2d` / `nn.BatchNorm1d` in eval mode: keys `weight`, `bias`, `running_mean`,
/// `running_var` and the training counter `num_batches_tracked` (unused).
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

/// PyTorch's default epsilon for both.
const EPS: f64 = 1e-5;

impl BatchNorm {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        let weight = p.var("weight", &[channels], nn::Init::Const(1.0));
        let bias = p.var("bias", &[channels], nn::Init::Const(0.0));
        let mean = p.zeros_no_train("running_mean", &[channels]);
        let var = p.ones_no_train("running_var", &[channels]);
        let _ = p.zeros_no_train("num_batches_tracked", &[]);
        BatchNorm { weight, bias, mean, var }
    }

    /// [N, C] or [N, C, H, W].
    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_batch_norm(Some(&self.weight), Some(&self.bias), Some(&self.mean), Some(&self.var), false, 0.1, EPS, true)
    }
}

/// `nn.PReLU(C)`: one learned slope per channel (key `weight`).
#[derive(Debug)]
pub struct PRelu {
    slope: Tensor,
}

impl PRelu {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        PRelu { slope: p.var("weight", &[channels], nn::Init::Const(0.25)) }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_prelu(&self.slope)
    }
}

/// A bias-free convolution's weight (`Conv2d(..., bias=False)`, key `weight`).
pub fn conv_weight(p: nn::Path, c_in: i64, c_out: i64, k: i64) -> Tensor {
    p.var("weight", &[c_out, c_in, k, k], nn::Init::Const(0.0))
}
