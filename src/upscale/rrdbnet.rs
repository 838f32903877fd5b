//! `RRDBNet` of `sr_model/rrdbnet_arch.py` (ESRGAN's generator, extended by Real-ESRGAN to scales
//! 2 and 1 by a pixel-unshuffle in front): `conv_first`, `body.N` (RRDBs), `conv_body` added back
//! onto `conv_first`'s output, two nearest x2 upsamplings each followed by `conv_up1`/`conv_up2` and
//! LeakyReLU(0.2), then `conv_hr` + LeakyReLU and `conv_last`. The output is always 4x the size
//! the body works at, so scale 2 (1) unshuffles by 2 (4) first.

use super::blocks::{Conv3, Rrdb, lrelu};
use crate::error::{Interrupt, TchResult};
use std::fmt;
use tch::{Tensor, nn};

/// The constructor arguments of `RRDBNet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrdbConfig {
    pub num_in_ch: i64,
    pub num_out_ch: i64,
    pub num_feat: i64,
    pub num_block: i64,
    pub num_grow_ch: i64,
    /// 1, 2 or 4.
    pub scale: u32,
}

impl RrdbConfig {
    /// GPEN's `realesrnet_x{1,2,4}.pth`: `RRDBNet(3, 3, num_feat=32, num_block=23, num_grow_ch=32,
    /// scale)`, a slim ESRGAN trained by the GPEN author (`RealESRNet.load_srmodel`).
    pub const fn esrnet(scale: u32) -> RrdbConfig {
        RrdbConfig { num_in_ch: 3, num_out_ch: 3, num_feat: 32, num_block: 23, num_grow_ch: 32, scale }
    }

    /// Real-ESRGAN's `RealESRGAN_x4plus.pth`: num_feat 64 (loadable here, not shipped by GPEN).
    pub const ESRGAN_X4PLUS: RrdbConfig =
        RrdbConfig { num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_block: 23, num_grow_ch: 32, scale: 4 };

    /// The pixel-unshuffle factor in front of `conv_first`: 4 / scale.
    pub fn unshuffle(&self) -> u32 {
        4 / self.scale
    }

    /// The input sides must be multiples of this (the unshuffle factor).
    pub fn multiple(&self) -> u32 {
        self.unshuffle()
    }

    pub fn validate(&self) -> Result<(), crate::error::ShapeError> {
        if ![1, 2, 4].contains(&self.scale) {
            return Err(format!("scale {} (RRDBNet supports 1, 2 and 4)", self.scale).into());
        }
        if self.num_in_ch < 1 || self.num_out_ch < 1 || self.num_feat < 1 || self.num_block < 0 || self.num_grow_ch < 1 {
            return Err(format!("invalid sizes in {self}").into());
        }
        Ok(())
    }
}

impl fmt::Display for RrdbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RRDBNet(num_in_ch={}, num_out_ch={}, num_feat={}, num_block={}, num_grow_ch={}, scale={})",
            self.num_in_ch, self.num_out_ch, self.num_feat, self.num_block, self.num_grow_ch, self.scale
        )
    }
}

#[derive(Debug)]
pub struct RrdbNet {
    config: RrdbConfig,
    conv_first: Conv3,
    body: Vec<Rrdb>,
    conv_body: Conv3,
    conv_up1: Conv3,
    conv_up2: Conv3,
    conv_hr: Conv3,
    conv_last: Conv3,
}

impl RrdbNet {
    /// The network with placeholder (zero) weights; `config` must be valid.
    pub fn new(p: &nn::Path, config: RrdbConfig) -> Self {
        let u = config.unshuffle() as i64;
        let nf = config.num_feat;
        let conv = |name: &str, c_in, c_out| Conv3::new(p / name, c_in, c_out);
        RrdbNet {
            config,
            conv_first: conv("conv_first", config.num_in_ch * u * u, nf),
            body: (0..config.num_block).map(|i| Rrdb::new(p / "body" / i, nf, config.num_grow_ch)).collect(),
            conv_body: conv("conv_body", nf, nf),
            conv_up1: conv("conv_up1", nf, nf),
            conv_up2: conv("conv_up2", nf, nf),
            conv_hr: conv("conv_hr", nf, nf),
            conv_last: conv("conv_last", nf, config.num_out_ch),
        }
    }

    pub fn config(&self) -> RrdbConfig {
        self.config
    }

    /// `x` [N, num_in_ch, H, W] with H, W multiples of [`RrdbConfig::multiple`] -> [N, num_out_ch,
    /// scale H, scale W], asking `stop` before each RRDB of the body (1/23 of the work for
    /// RealESRNet): `None` when it said stop. Every intermediate is dropped as soon as the next
    /// exists, so the peak is what [`super::bytes_per_input_pixel`] counts.
    pub fn forward_until(&self, x: &Tensor, stop: &mut Interrupt<'_>) -> TchResult<Option<Tensor>> {
        let u = self.config.unshuffle() as i64;
        // Channels-last from here on (the weights are, see `make_channels_last`).
        let x = if u > 1 { x.f_pixel_unshuffle(u)? } else { x.shallow_clone() };
        let feat = self.conv_first.forward(&crate::tensor_ops::channels_last(&x)?)?;
        let mut body_feat = None::<Tensor>;
        for block in &self.body {
            if stop() {
                return Ok(None);
            }
            body_feat = Some(block.forward(body_feat.as_ref().unwrap_or(&feat))?);
        }
        let body_feat = self.conv_body.forward(body_feat.as_ref().unwrap_or(&feat))?;
        let feat = feat.f_add(&body_feat)?;
        drop(body_feat);
        let feat = self.up(feat, &self.conv_up1)?;
        let feat = self.up(feat, &self.conv_up2)?;
        let feat = lrelu(self.conv_hr.forward(&feat)?)?;
        self.conv_last.forward(&feat).map(Some)
    }

    /// Every convolution's weight in channels-last memory, the layout `forward` runs in (oneDNN
    /// then reorders nothing), the dense blocks' split by input
    /// ([`super::blocks::ResidualDenseBlock`]). Call after loading.
    pub fn make_channels_last(&mut self) -> TchResult<()> {
        for conv in
            [&mut self.conv_first, &mut self.conv_body, &mut self.conv_up1, &mut self.conv_up2, &mut self.conv_hr, &mut self.conv_last]
        {
            conv.make_channels_last()?;
        }
        self.body.iter_mut().try_for_each(Rrdb::split_weights)
    }

    /// `lrelu(conv(F.interpolate(feat, scale_factor=2, mode='nearest')))`, dropping each input early.
    fn up(&self, feat: Tensor, conv: &Conv3) -> TchResult<Tensor> {
        let (_, _, h, w) = feat.size4()?;
        let big = feat.f_upsample_nearest2d([2 * h, 2 * w], None, None)?;
        drop(feat);
        let y = conv.forward(&big)?;
        drop(big);
        lrelu(y)
    }
}
