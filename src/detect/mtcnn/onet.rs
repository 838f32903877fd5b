//! O-Net, the output network: final scores, box regression and five landmarks from 48x48 crops.

use super::layers::{Conv, Dense, PRelu, flatten_tf, max_pool, softmax};
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct ONet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    conv4: Conv,
    prelu4: PRelu,
    dense5: Dense,
    prelu5: PRelu,
    dense6_1: Dense,
    dense6_2: Dense,
    dense6_3: Dense,
}

/// O-Net's three heads.
#[derive(Debug)]
pub struct ONetOutput {
    /// [N, 4] box regression.
    pub reg: Tensor,
    /// [N, 10] landmarks relative to the input box: x0..x4, then y0..y4.
    pub landmarks: Tensor,
    /// [N, 2] probabilities.
    pub prob: Tensor,
}

impl ONet {
    pub fn new(p: &nn::Path) -> Self {
        ONet {
            conv1: Conv::new(p / "conv1", 3, 32, 3),
            prelu1: PRelu::new(p / "prelu1", 32),
            conv2: Conv::new(p / "conv2", 32, 64, 3),
            prelu2: PRelu::new(p / "prelu2", 64),
            conv3: Conv::new(p / "conv3", 64, 64, 3),
            prelu3: PRelu::new(p / "prelu3", 64),
            conv4: Conv::new(p / "conv4", 64, 128, 2),
            prelu4: PRelu::new(p / "prelu4", 128),
            dense5: Dense::new(p / "dense5", 1152, 256),
            prelu5: PRelu::new(p / "prelu5", 256),
            dense6_1: Dense::new(p / "dense6_1", 256, 2),
            dense6_2: Dense::new(p / "dense6_2", 256, 4),
            dense6_3: Dense::new(p / "dense6_3", 256, 10),
        }
    }

    /// [N, 3, 48, 48] -> regression, landmarks and probabilities.
    pub fn forward(&self, x: &Tensor) -> TchResult<ONetOutput> {
        let x = self.prelu1.forward(&self.conv1.forward(x)?)?;
        let x = max_pool(&x, 3, 2)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = max_pool(&x, 3, 2)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let x = max_pool(&x, 2, 2)?;
        let x = self.prelu4.forward(&self.conv4.forward(&x)?)?;
        let x = self.prelu5.forward(&self.dense5.forward(&flatten_tf(&x)?)?)?;
        Ok(ONetOutput {
            reg: self.dense6_2.forward(&x)?,
            landmarks: self.dense6_3.forward(&x)?,
            prob: softmax(&self.dense6_1.forward(&x)?)?,
        })
    }
}
