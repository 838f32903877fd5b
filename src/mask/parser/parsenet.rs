//! `ParseNet` of `face_parse/parse_model.py`: encoder (a plain 3x3 conv, then stride-2 residual
//! blocks), a residual body added back onto its input, a decoder of nearest-x2 residual blocks,
//! and two 3x3 heads (`out_img_conv` RGB, `out_mask_conv` the parsing logits).

use super::blocks::{ConvLayer, ResidualBlock, Scale};
use crate::error::TchResult;
use std::fmt;
use tch::{Tensor, nn};

/// (input channels, output channels) of one block.
pub type ChannelPair = (i64, i64);

/// The constructor arguments that shape the network (`in_size` only decides the number of down
/// steps together with `min_feat_size`; the layers themselves do not depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseNetConfig {
    pub base_ch: i64,
    /// `ch_range`: every block's channel count is clipped to it (the stem's `base_ch` is not).
    pub min_ch: i64,
    pub max_ch: i64,
    /// `log2(in_size / min_feat_size)` and `log2(out_size / min_feat_size)`.
    pub down_steps: u32,
    pub up_steps: u32,
    pub res_depth: u32,
    pub parsing_ch: i64,
}

impl ParseNetConfig {
    /// The released `ParseNet-latest.pth`: `ParseNet(512, 512, 32, 64, 19, norm_type='bn',
    /// relu_type='LeakyReLU', ch_range=[32, 256])`, res_depth 10.
    pub const RELEASED: ParseNetConfig =
        ParseNetConfig { base_ch: 64, min_ch: 32, max_ch: 256, down_steps: 4, up_steps: 4, res_depth: 10, parsing_ch: 19 };

    fn clip(&self, c: i64) -> i64 {
        c.min(self.max_ch).max(self.min_ch)
    }

    /// (c_in, c_out) of the encoder's down blocks, the body's width, the decoder's up blocks.
    pub fn channels(&self) -> (Vec<ChannelPair>, i64, Vec<ChannelPair>) {
        let mut head = self.base_ch;
        let mut down = Vec::new();
        for _ in 0..self.down_steps {
            down.push((self.clip(head), self.clip(head * 2)));
            head *= 2;
        }
        let body = self.clip(head);
        let mut up = Vec::new();
        for _ in 0..self.up_steps {
            up.push((self.clip(head), self.clip(head / 2)));
            head /= 2;
        }
        (down, body, up)
    }

    /// The width of the decoder's output, which the two heads read.
    pub fn head_ch(&self) -> i64 {
        self.clip(self.base_ch << self.down_steps >> self.up_steps)
    }

    /// The same network with `ch_range` tightened to the channel counts that occur, so two
    /// configurations that build identical layers compare equal (the released `[32, 256]` never
    /// clips below 64).
    pub fn effective(&self) -> ParseNetConfig {
        let (down, body, up) = self.channels();
        let all: Vec<i64> = down.iter().chain(&up).flat_map(|&(a, b)| [a, b]).chain([body]).collect();
        let min_ch = all.iter().copied().min().unwrap_or(self.min_ch);
        let max_ch = all.iter().copied().max().unwrap_or(self.max_ch);
        ParseNetConfig { min_ch, max_ch, ..*self }
    }
}

impl fmt::Display for ParseNetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ParseNet(base_ch={}, ch_range=[{}, {}], down/up steps {}/{}, res_depth={}, parsing_ch={})",
            self.base_ch, self.min_ch, self.max_ch, self.down_steps, self.up_steps, self.res_depth, self.parsing_ch
        )
    }
}

#[derive(Debug)]
pub struct ParseNet {
    /// Folded: runs in channels-last memory.
    folded: bool,
    stem: ConvLayer,
    down: Vec<ResidualBlock>,
    body: Vec<ResidualBlock>,
    up: Vec<ResidualBlock>,
    out_img: ConvLayer,
    out_mask: ConvLayer,
}

impl ParseNet {
    pub fn new(p: &nn::Path, config: &ParseNetConfig) -> Self {
        let (down_ch, body_ch, up_ch) = config.channels();
        let enc = p / "encoder";
        let stem = ConvLayer::new(&enc / 0, 3, config.base_ch, Scale::None, false, false);
        let down = down_ch.iter().enumerate().map(|(i, &(a, b))| ResidualBlock::new(&enc / (i + 1), a, b, Scale::Down)).collect();
        let body = (0..config.res_depth).map(|i| ResidualBlock::new(p / "body" / i, body_ch, body_ch, Scale::None)).collect();
        let up = up_ch.iter().enumerate().map(|(i, &(a, b))| ResidualBlock::new(p / "decoder" / i, a, b, Scale::Up)).collect();
        let head = config.head_ch();
        let out_img = ConvLayer::new(p / "out_img_conv", head, 3, Scale::None, false, false);
        let out_mask = ConvLayer::new(p / "out_mask_conv", head, config.parsing_ch, Scale::None, false, false);
        ParseNet { folded: false, stem, down, body, up, out_img, out_mask }
    }

    /// The inference form (see [`ResidualBlock::fold`]): the same function, each block's norms
    /// folded into its convolutions and each up block's upsampling folded into a sub-pixel
    /// convolution. Run under `no_grad` (the folded tensors are new, derived from the loaded ones).
    pub fn fold(&mut self) -> TchResult<()> {
        for block in self.down.iter_mut().chain(&mut self.body).chain(&mut self.up) {
            block.fold()?;
        }
        for conv in [&mut self.stem, &mut self.out_img, &mut self.out_mask] {
            conv.make_inference()?;
        }
        self.folded = true;
        Ok(())
    }

    /// The decoder's output features. Each stage's input is dropped as soon as the next exists,
    /// so only the encoder output `feat` stays alive across the body, as in the reference.
    fn features(&self, x: &Tensor) -> TchResult<Tensor> {
        let mut feat = if self.folded { self.stem.forward(&crate::tensor_ops::channels_last(x)?)? } else { self.stem.forward(x)? };
        for block in &self.down {
            feat = block.forward(&feat)?;
        }
        let mut h: Option<Tensor> = None;
        for block in &self.body {
            h = Some(block.forward(h.as_ref().unwrap_or(&feat))?);
        }
        // `feat + body(feat)`; an empty body is the identity.
        let mut x = feat.f_add(h.as_ref().unwrap_or(&feat))?;
        drop((feat, h));
        for block in &self.up {
            x = block.forward(&x)?;
        }
        Ok(x)
    }

    /// `(out_mask, out_img)`: parsing logits [N, parsing_ch, S, S] and the RGB head [N, 3, S, S].
    pub fn forward(&self, x: &Tensor) -> TchResult<(Tensor, Tensor)> {
        let f = self.features(x)?;
        Ok((self.out_mask.forward(&f)?, self.out_img.forward(&f)?))
    }

    /// Only the parsing logits (GPEN never uses the RGB head).
    pub fn forward_mask(&self, x: &Tensor) -> TchResult<Tensor> {
        self.out_mask.forward(&self.features(x)?)
    }
}
