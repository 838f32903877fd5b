//! The MobileNet-0.25 body of `cfg_mnet` (net.py's `MobileNetV1`, its `avg`/`fc` unused because
//! `IntermediateLayerGetter` stops at `stage3`). Each stage is an `nn.Sequential`: index 0 of
//! stage1 is a full 3x3 `conv_bn` (keys `0.0`, `0.1`), every other entry a `conv_dw` (keys `.0`/`.1`
//! depthwise conv + BN, `.3`/`.4` pointwise conv + BN; `.2`/`.5` are the parameter-free LeakyReLUs).
//! Every activation is LeakyReLU(0.1).

use super::layers::{Act, BatchNorm, Conv, ConvBn};
use crate::error::TchResult;
use tch::{Tensor, nn};

const LEAKY: Act = Act::Leaky(0.1);

/// `conv_dw(in, out, stride)` entries of each stage: (in, out, stride).
const STAGE1: [(i64, i64, i64); 5] = [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1)];
const STAGE2: [(i64, i64, i64); 6] = [(64, 128, 2), (128, 128, 1), (128, 128, 1), (128, 128, 1), (128, 128, 1), (128, 128, 1)];
const STAGE3: [(i64, i64, i64); 2] = [(128, 256, 2), (256, 256, 1)];

/// A depthwise-separable block: 3x3 depthwise then 1x1 pointwise, each with BN and LeakyReLU.
#[derive(Debug)]
struct ConvDw {
    depthwise: ConvBn,
    pointwise: ConvBn,
}

impl ConvDw {
    fn new(p: nn::Path, in_ch: i64, out_ch: i64, stride: i64) -> Self {
        ConvDw {
            depthwise: ConvBn::new(Conv::depthwise(&p / "0", in_ch, stride), BatchNorm::new(&p / "1", in_ch), LEAKY),
            pointwise: ConvBn::new(Conv::new(&p / "3", in_ch, out_ch, 1, 1), BatchNorm::new(&p / "4", out_ch), LEAKY),
        }
    }

    fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        self.pointwise.forward(&self.depthwise.forward(x)?)
    }
}

#[derive(Debug)]
pub struct MobileNet025 {
    stem: ConvBn,
    stages: [Vec<ConvDw>; 3],
}

impl MobileNet025 {
    /// `p` is the `body` path.
    pub fn new(p: &nn::Path) -> Self {
        let s1 = p / "stage1";
        let stem = ConvBn::seq(&s1 / 0, 3, 8, 3, 2, LEAKY);
        // stage1's conv_dw entries start at index 1, after the stem.
        let stage = |name: &str, spec: &[(i64, i64, i64)], first: usize| -> Vec<ConvDw> {
            let sp = p / name;
            spec.iter().enumerate().map(|(i, &(a, b, s))| ConvDw::new(&sp / (first + i), a, b, s)).collect()
        };
        MobileNet025 { stem, stages: [stage("stage1", &STAGE1, 1), stage("stage2", &STAGE2, 0), stage("stage3", &STAGE3, 0)] }
    }

    /// [N, 3, H, W] -> the outputs of stage1, stage2 and stage3 (64, 128, 256 channels at
    /// strides 8, 16, 32).
    pub fn forward(&self, x: &Tensor) -> TchResult<[Tensor; 3]> {
        let mut x = self.stem.forward(x)?;
        let mut outs = Vec::with_capacity(3);
        for stage in &self.stages {
            for block in stage {
                x = block.forward(&x)?;
            }
            outs.push(x.shallow_clone());
        }
        Ok(outs.try_into().expect("three stages"))
    }
}
