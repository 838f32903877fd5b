//! The ResNet-50 body of `cfg_re50`: torchvision's `resnet50` (v1.5, the stride on the 3x3 conv)
//! cut after `layer4` by `IntermediateLayerGetter`, so there is no `avgpool`/`fc`. Keys
//! `body.conv1`, `body.bn1`, `body.layer{1..4}.{b}.{conv,bn}{1,2,3}` and
//! `body.layer{k}.0.downsample.{0,1}`.

use super::layers::{Act, BatchNorm, Conv, ConvBn};
use crate::error::TchResult;
use tch::{Tensor, nn};

/// Bottlenecks per stage and their 3x3 widths (outputs are 4x wider).
const STAGES: [(usize, i64); 4] = [(3, 64), (4, 128), (6, 256), (3, 512)];

#[derive(Debug)]
struct Bottleneck {
    reduce: ConvBn,
    spatial: ConvBn,
    expand: ConvBn,
    /// 1x1 conv + BN on the shortcut, in the first block of each stage (channels or stride change).
    downsample: Option<ConvBn>,
}

impl Bottleneck {
    fn new(p: nn::Path, in_ch: i64, width: i64, stride: i64) -> Self {
        let out = width * 4;
        let cb = |i: usize, inp: i64, outp: i64, k: i64, s: i64, act: Act| {
            ConvBn::new(Conv::new(&p / format!("conv{i}"), inp, outp, k, s), BatchNorm::new(&p / format!("bn{i}"), outp), act)
        };
        let downsample = (stride != 1 || in_ch != out).then(|| ConvBn::seq(&p / "downsample", in_ch, out, 1, stride, Act::Linear));
        Bottleneck {
            reduce: cb(1, in_ch, width, 1, 1, Act::Relu),
            spatial: cb(2, width, width, 3, stride, Act::Relu),
            expand: cb(3, width, out, 1, 1, Act::Linear),
            downsample,
        }
    }

    fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let a = self.reduce.forward(x)?;
        let b = self.spatial.forward(&a)?;
        drop(a);
        let mut y = self.expand.forward(&b)?;
        drop(b);
        let _ = match &self.downsample {
            Some(d) => y.f_add_(&d.forward(x)?)?,
            None => y.f_add_(x)?,
        };
        let _ = y.f_relu_()?;
        Ok(y)
    }
}

#[derive(Debug)]
pub struct ResNet50 {
    stem: ConvBn,
    layers: Vec<Vec<Bottleneck>>,
}

impl ResNet50 {
    /// `p` is the `body` path.
    pub fn new(p: &nn::Path) -> Self {
        let stem = ConvBn::new(Conv::new(p / "conv1", 3, 64, 7, 2), BatchNorm::new(p / "bn1", 64), Act::Relu);
        let mut in_ch = 64;
        let mut layers = Vec::new();
        for (k, &(blocks, width)) in STAGES.iter().enumerate() {
            let lp = p / format!("layer{}", k + 1);
            // layer1 keeps the stride-4 size of the max-pool; layer2..4 halve it.
            let stride = if k == 0 { 1 } else { 2 };
            let stage: Vec<Bottleneck> = (0..blocks)
                .map(|b| {
                    let block = Bottleneck::new(&lp / b, in_ch, width, if b == 0 { stride } else { 1 });
                    in_ch = width * 4;
                    block
                })
                .collect();
            layers.push(stage);
        }
        ResNet50 { stem, layers }
    }

    /// [N, 3, H, W] -> the outputs of layer2, layer3 and layer4 (512, 1024, 2048 channels at
    /// strides 8, 16, 32; each stride-2 step gives ceil(x / 2)).
    pub fn forward(&self, x: &Tensor) -> TchResult<[Tensor; 3]> {
        // The stem's output (64 channels at stride 2, the largest map) is freed right after the
        // max-pool, before layer1's peak.
        let mut x = self.stem.forward(x)?.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
        let mut outs = Vec::with_capacity(3);
        for (k, stage) in self.layers.iter().enumerate() {
            for block in stage {
                x = block.forward(&x)?;
            }
            if k > 0 {
                outs.push(x.shallow_clone());
            }
        }
        Ok(outs.try_into().expect("three returned stages"))
    }
}
