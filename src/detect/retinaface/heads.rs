//! The three 1x1 prediction heads, one conv per pyramid level and two anchors per cell: keys
//! `ClassHead.{i}.conv1x1` (2 anchors x 2 classes), `BboxHead.{i}.conv1x1` (x 4 offsets) and
//! `LandmarkHead.{i}.conv1x1` (x 10 offsets), each with a bias.

use super::layers::Conv;
use crate::error::TchResult;
use tch::{Tensor, nn};

/// Anchors per feature-map cell (the two `min_sizes` of each level).
pub const ANCHORS: i64 = 2;

/// One head type over the three levels.
#[derive(Debug)]
pub struct Head {
    convs: [Conv; 3],
    /// Values per anchor: 2 (class), 4 (box) or 10 (landmarks).
    per_anchor: i64,
}

impl Head {
    pub fn new(p: &nn::Path, in_ch: i64, per_anchor: i64) -> Self {
        let conv = |i: usize| Conv::with_bias(p / i / "conv1x1", in_ch, ANCHORS * per_anchor);
        Head { convs: [conv(0), conv(1), conv(2)], per_anchor }
    }

    /// The three levels -> [N, priors, per_anchor], priors ordered level by level, then row-major
    /// over cells, then by anchor: the NCHW output is permuted to NHWC before flattening, which
    /// is the order `priors::priors` generates.
    pub fn forward(&self, features: &[Tensor; 3]) -> TchResult<Tensor> {
        let mut parts = Vec::with_capacity(3);
        for (conv, x) in self.convs.iter().zip(features) {
            let y = conv.forward(x)?.f_permute([0, 2, 3, 1])?.f_contiguous()?;
            parts.push(y.f_view([y.size()[0], -1, self.per_anchor])?);
        }
        Tensor::f_cat(&parts, 1)
    }
}
