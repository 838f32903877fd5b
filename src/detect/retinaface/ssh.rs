//! net.py's `SSH` context module (one per pyramid level): a 3x3 branch with half the channels, and
//! 5x5 and 7x7 receptive fields built from stacked 3x3 convs with a quarter each, concatenated
//! and ReLU'd. Keys `ssh{1,2,3}.conv3X3`, `.conv5X5_1`, `.conv5X5_2`, `.conv7X7_2` and
//! `.conv7x7_3` (lower-case x in the authors' code), each `.{0,1}`.

use super::layers::{Act, ConvBn};
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct Ssh {
    conv3x3: ConvBn,
    conv5x5_1: ConvBn,
    conv5x5_2: ConvBn,
    conv7x7_2: ConvBn,
    conv7x7_3: ConvBn,
}

impl Ssh {
    pub fn new(p: &nn::Path, in_ch: i64, out: i64) -> Self {
        let act = Act::for_channels(out);
        let (half, quarter) = (out / 2, out / 4);
        Ssh {
            conv3x3: ConvBn::seq(p / "conv3X3", in_ch, half, 3, 1, Act::Linear),
            conv5x5_1: ConvBn::seq(p / "conv5X5_1", in_ch, quarter, 3, 1, act),
            conv5x5_2: ConvBn::seq(p / "conv5X5_2", quarter, quarter, 3, 1, Act::Linear),
            conv7x7_2: ConvBn::seq(p / "conv7X7_2", quarter, quarter, 3, 1, act),
            conv7x7_3: ConvBn::seq(p / "conv7x7_3", quarter, quarter, 3, 1, Act::Linear),
        }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let a = self.conv3x3.forward(x)?;
        let shared = self.conv5x5_1.forward(x)?;
        let b = self.conv5x5_2.forward(&shared)?;
        let c = self.conv7x7_3.forward(&self.conv7x7_2.forward(&shared)?)?;
        drop(shared);
        let mut y = Tensor::f_cat(&[a, b, c], 1)?;
        let _ = y.f_relu_()?;
        Ok(y)
    }
}
