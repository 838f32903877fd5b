//! `bottleneck_IR_SE` of `training/loss/helpers.py`: a residual unit whose branch is BatchNorm,
//! 3x3 conv, PReLU, 3x3 conv (carrying the unit's stride), BatchNorm and a squeeze-excitation
//! ([`SeModule`]); the shortcut is `MaxPool2d(1, stride)` (a strided subsample) when the width
//! does not change, else a strided 1x1 conv and a BatchNorm.

use super::layers::{PRelu, conv_weight};
use crate::error::TchResult;
use crate::tensor_ops::BatchNorm;
use tch::{Tensor, nn};

/// `SEModule(C, 16)`: global average, 1x1 conv C -> C/16, ReLU, 1x1 conv back, sigmoid, and the
/// input scaled by it per channel (keys `fc1.weight`, `fc2.weight`, no biases).
#[derive(Debug)]
pub struct SeModule {
    fc1: Tensor,
    fc2: Tensor,
}

/// `SEModule`'s reduction in `bottleneck_IR_SE`.
pub const SE_REDUCTION: i64 = 16;

impl SeModule {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        let hidden = channels / SE_REDUCTION;
        SeModule { fc1: conv_weight(&p / "fc1", channels, hidden, 1), fc2: conv_weight(&p / "fc2", hidden, channels, 1) }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let squeezed = x.f_adaptive_avg_pool2d([1, 1])?;
        let h = squeezed.f_conv2d::<Tensor>(&self.fc1, None, [1, 1], [0, 0], [1, 1], 1)?.f_relu()?;
        let gate = h.f_conv2d::<Tensor>(&self.fc2, None, [1, 1], [0, 0], [1, 1], 1)?.f_sigmoid()?;
        x.f_mul(&gate)
    }
}

/// The strided 1x1 conv + BatchNorm shortcut of a unit that changes width.
#[derive(Debug)]
struct Projection {
    conv: Tensor,
    norm: BatchNorm,
}

#[derive(Debug)]
pub struct BottleneckIrSe {
    stride: i64,
    /// `None`: `MaxPool2d(1, stride)`.
    shortcut: Option<Projection>,
    norm_in: BatchNorm,
    conv1: Tensor,
    prelu: PRelu,
    conv2: Tensor,
    norm_out: BatchNorm,
    se: SeModule,
}

impl BottleneckIrSe {
    /// `p` is `body.<i>`; keys `shortcut_layer.{0,1}` and `res_layer.{0..5}` as the reference's
    /// `Sequential`s number them.
    pub fn new(p: nn::Path, c_in: i64, depth: i64, stride: i64) -> Self {
        let shortcut = (c_in != depth).then(|| {
            let s = &p / "shortcut_layer";
            Projection { conv: conv_weight(&s / 0, c_in, depth, 1), norm: BatchNorm::new(&s / 1, depth) }
        });
        let r = &p / "res_layer";
        BottleneckIrSe {
            stride,
            shortcut,
            norm_in: BatchNorm::new(&r / 0, c_in),
            conv1: conv_weight(&r / 1, c_in, depth, 3),
            prelu: PRelu::new(&r / 2, depth),
            conv2: conv_weight(&r / 3, depth, depth, 3),
            norm_out: BatchNorm::new(&r / 4, depth),
            se: SeModule::new(&r / 5, depth),
        }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let s = self.stride;
        let shortcut = match &self.shortcut {
            Some(proj) => proj.norm.forward(&x.f_conv2d::<Tensor>(&proj.conv, None, [s, s], [0, 0], [1, 1], 1)?)?,
            // A 1x1 max pool with stride s keeps every s-th pixel.
            None if s == 1 => x.shallow_clone(),
            None => x.f_max_pool2d([1, 1], [s, s], [0, 0], [1, 1], false)?,
        };
        let h = self.norm_in.forward(x)?;
        let h = h.f_conv2d::<Tensor>(&self.conv1, None, [1, 1], [1, 1], [1, 1], 1)?;
        let h = self.prelu.forward(&h)?;
        let h = h.f_conv2d::<Tensor>(&self.conv2, None, [s, s], [1, 1], [1, 1], 1)?;
        let h = self.se.forward(&self.norm_out.forward(&h)?)?;
        h.f_add(&shortcut)
    }
}
