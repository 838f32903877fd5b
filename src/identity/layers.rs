//! The identity network's own layers under the checkpoint's key names: PReLU and bias-free
//! convolution weights (its BatchNorms are the shared [`crate::tensor_ops::BatchNorm`]).

use crate::error::TchResult;
use tch::{Tensor, nn};

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
