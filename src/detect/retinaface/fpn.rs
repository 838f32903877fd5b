//! net.py's `FPN`: 1x1 lateral convs bring the three body outputs to `out` channels, then each
//! coarser level is upsampled (nearest, to the finer level's exact size) and added before a 3x3
//! merge conv. Keys `fpn.output{1,2,3}.{0,1}` and `fpn.merge{1,2}.{0,1}`.

use super::layers::{Act, ConvBn};
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct Fpn {
    output: [ConvBn; 3],
    merge1: ConvBn,
    merge2: ConvBn,
}

impl Fpn {
    pub fn new(p: &nn::Path, in_channels: [i64; 3], out: i64) -> Self {
        let act = Act::for_channels(out);
        let lateral = |i: usize| ConvBn::seq(p / format!("output{}", i + 1), in_channels[i], out, 1, 1, act);
        Fpn {
            output: [lateral(0), lateral(1), lateral(2)],
            merge1: ConvBn::seq(p / "merge1", out, out, 3, 1, act),
            merge2: ConvBn::seq(p / "merge2", out, out, 3, 1, act),
        }
    }

    pub fn forward(&self, [c3, c4, c5]: &[Tensor; 3]) -> TchResult<[Tensor; 3]> {
        let o1 = self.output[0].forward(c3)?;
        let o2 = self.output[1].forward(c4)?;
        let o3 = self.output[2].forward(c5)?;
        let o2 = self.merge2.forward(&add_upsampled(o2, &o3)?)?;
        let o1 = self.merge1.forward(&add_upsampled(o1, &o2)?)?;
        Ok([o1, o2, o3])
    }
}

/// `fine + interpolate(coarse, size=fine.shape[2:], mode="nearest")`. With odd sizes the coarse
/// map is not exactly half, so the size, not a scale factor, decides the source rows
/// (floor(dst * in / out), what PyTorch does when only `size` is given).
fn add_upsampled(mut fine: Tensor, coarse: &Tensor) -> TchResult<Tensor> {
    let size = fine.size();
    let up = coarse.f_upsample_nearest2d([size[2], size[3]], None, None)?;
    let _ = fine.f_add_(&up)?;
    Ok(fine)
}
