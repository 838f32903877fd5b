//! R-Net, the refinement network: re-scores 24x24 crops of the P-Net candidates.

use super::layers::{Conv, Dense, PRelu, flatten_tf, max_pool, softmax};
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct RNet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    dense4: Dense,
    prelu4: PRelu,
    dense5_1: Dense,
    dense5_2: Dense,
}

impl RNet {
    pub fn new(p: &nn::Path) -> Self {
        RNet {
            conv1: Conv::new(p / "conv1", 3, 28, 3),
            prelu1: PRelu::new(p / "prelu1", 28),
            conv2: Conv::new(p / "conv2", 28, 48, 3),
            prelu2: PRelu::new(p / "prelu2", 48),
            conv3: Conv::new(p / "conv3", 48, 64, 2),
            prelu3: PRelu::new(p / "prelu3", 64),
            dense4: Dense::new(p / "dense4", 576, 128),
            prelu4: PRelu::new(p / "prelu4", 128),
            dense5_1: Dense::new(p / "dense5_1", 128, 2),
            dense5_2: Dense::new(p / "dense5_2", 128, 4),
        }
    }

    /// [N, 3, 24, 24] -> (box regression [N, 4], probabilities [N, 2]).
    pub fn forward(&self, x: &Tensor) -> TchResult<(Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(x)?)?;
        let x = max_pool(&x, 3, 2)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = max_pool(&x, 3, 2)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let x = self.prelu4.forward(&self.dense4.forward(&flatten_tf(&x)?)?)?;
        let prob = softmax(&self.dense5_1.forward(&x)?)?;
        Ok((self.dense5_2.forward(&x)?, prob))
    }
}
