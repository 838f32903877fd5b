//! P-Net, the proposal network: fully convolutional, one 12x12 window per output cell (stride 2).

use super::layers::{Conv, PRelu, max_pool, softmax};
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct PNet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    conv4_1: Conv,
    conv4_2: Conv,
}

impl PNet {
    pub fn new(p: &nn::Path) -> Self {
        PNet {
            conv1: Conv::new(p / "conv1", 3, 10, 3),
            prelu1: PRelu::new(p / "prelu1", 10),
            conv2: Conv::new(p / "conv2", 10, 16, 3),
            prelu2: PRelu::new(p / "prelu2", 16),
            conv3: Conv::new(p / "conv3", 16, 32, 3),
            prelu3: PRelu::new(p / "prelu3", 32),
            conv4_1: Conv::new(p / "conv4_1", 32, 2, 1),
            conv4_2: Conv::new(p / "conv4_2", 32, 4, 1),
        }
    }

    /// [N, 3, H, W] normalised image -> (box regression [N, 4, H', W'], probabilities [N, 2, H', W']),
    /// H' = floor((H - 9) / 2).
    pub fn forward(&self, x: &Tensor) -> TchResult<(Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(x)?)?;
        let x = max_pool(&x, 2, 2)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let prob = softmax(&self.conv4_1.forward(&x)?)?;
        Ok((self.conv4_2.forward(&x)?, prob))
    }
}
