//! GPEN's background super-resolution: `RRDBNet` as `sr_model/real_esrnet.py::RealESRNet` runs it
//! (gpen.md §4.8). With `--use_sr` the whole photo is upscaled by this network and the restored
//! faces are pasted onto the result.
//!
//! Weights are `realesrnet_x{1,2,4}.pth` (`{'params_ema': state_dict}`, strictly loaded by the
//! reference); Real-ESRGAN's `RealESRGAN_x4plus.pth` (num_feat 64) loads as well.
//!
//! Cost: the released x2 network does about 2.4 M multiply-adds per input pixel (the 23 RRDBs at a
//! quarter of the pixels); on 2 CPU cores (Zen 5, AVX-512) that is about 0.07 megapixels of
//! input per second whole (channels-last, the dense blocks without concatenations; `bench
//! upscale`, docs/BENCHMARKS.md), less in small tiles (64 px tiles process 1.5x the pixels with
//! their 10 px context). See [`bytes_per_input_pixel`] for memory.

mod blocks;
mod rrdbnet;
pub mod stage;
pub mod tiles;

pub use rrdbnet::{RrdbConfig, RrdbNet};
pub use stage::{
    MIN_TILE, PhotoUpscaler, TILE_PAD, TilePlan, UpscaleError, Upscaled, describe_recovery, fit, plan_tiles, upscale_with_retry,
};
pub use tiles::{Rect, Tile, Tiles};

use crate::checkpoint::{self, CheckpointError, Shapes};
use crate::error::{Interrupt, RunError, ShapeError};
use image::RgbImage;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

#[derive(Debug, thiserror::Error)]
pub enum SrError {
    /// The file is missing, unreadable, or its keys and shapes do not match the network.
    #[error(transparent)]
    Weights(#[from] CheckpointError),
    #[error("{} does not hold an RRDBNet super-resolution model: {reason}", path.display())]
    NotRrdb { path: PathBuf, reason: ShapeError },
    #[error("super-resolution: {0}")]
    Input(String),
    /// A configuration RRDBNet cannot be built with.
    #[error("super-resolution: {0}")]
    Config(ShapeError),
    /// A libtorch failure while running the network; [`RunError::OutOfMemory`] when a tile (or the
    /// whole image) did not fit, so the caller can halve the tiles and retry.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<tch::TchError> for SrError {
    fn from(err: tch::TchError) -> Self {
        SrError::Run(err.into())
    }
}

impl SrError {
    pub fn is_oom(&self) -> bool {
        matches!(self, SrError::Run(e) if e.is_oom())
    }
}

/// RRDBNet with its weights, on one device.
#[derive(Debug)]
pub struct Upscaler {
    net: RrdbNet,
    device: Device,
    _vs: nn::VarStore,
}

impl Upscaler {
    /// Loads an RRDBNet checkpoint; the configuration is inferred from its shapes (see
    /// [`infer_config`]) and every key and shape is checked.
    pub fn load(path: &Path, device: Device) -> Result<Self, SrError> {
        if !path.is_file() {
            return Err(CheckpointError::unreadable(path, "super-resolution weights (realesrnet_x*.pth) not found").into());
        }
        let found: BTreeMap<String, Tensor> = checkpoint::unwrap(checkpoint::read_tensors(path)?).into_iter().collect();
        let shapes: Shapes = found.iter().map(|(k, t)| (k.clone(), t.size())).collect();
        let config = infer_config(&shapes).map_err(|reason| SrError::NotRrdb { path: path.into(), reason })?;
        let mut up = Self::build(config, device)?;
        checkpoint::load_strict(&mut up._vs, &found, path, &config.to_string(), |_| false)?;
        up.ready()
    }

    /// The network with placeholder (zero) weights, for key checks, benchmarks and memory
    /// measurements where the values do not matter.
    pub fn with_config(config: RrdbConfig, device: Device) -> Result<Self, SrError> {
        Self::build(config, device)?.ready()
    }

    fn build(config: RrdbConfig, device: Device) -> Result<Self, SrError> {
        config.validate().map_err(SrError::Config)?;
        let vs = nn::VarStore::new(device);
        let net = RrdbNet::new(&vs.root(), config);
        Ok(Upscaler { net, device, _vs: vs })
    }

    /// The loaded network in the layout it runs in (channels-last copies of its weights).
    fn ready(mut self) -> Result<Self, SrError> {
        tch::no_grad(|| self.net.make_channels_last())?;
        Ok(self)
    }

    pub fn config(&self) -> RrdbConfig {
        self.net.config()
    }

    pub fn scale(&self) -> u32 {
        self.net.config().scale
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Every registered key with its shape (the checkpoint's names).
    pub fn shapes(&self) -> Shapes {
        checkpoint::expected_shapes(&self._vs)
    }

    /// The raw network on an already padded `x` [N, num_in_ch, H, W] float (RGB in [0, 1]), H and
    /// W multiples of [`RrdbConfig::multiple`]: [N, num_out_ch, scale H, scale W] on this device,
    /// not clamped.
    pub fn forward_raw(&self, x: &Tensor) -> Result<Tensor, SrError> {
        self.forward_raw_until(x, &mut || false)
    }

    /// [`Self::forward_raw`], asking `stop` between the body's blocks ([`RunError::Interrupted`]
    /// when it said stop).
    pub fn forward_raw_until(&self, x: &Tensor, stop: &mut Interrupt<'_>) -> Result<Tensor, SrError> {
        let c = self.config();
        let m = c.multiple() as i64;
        match x.size().as_slice() {
            &[n, ch, h, w] if n > 0 && ch == c.num_in_ch && h > 0 && w > 0 && h % m == 0 && w % m == 0 && x.kind() == Kind::Float => {}
            dims => {
                return Err(SrError::Input(format!(
                    "expects input [N, {}, H, W] float with H and W multiples of {m}, got {dims:?} {:?}",
                    c.num_in_ch,
                    x.kind()
                )));
            }
        }
        let y = tch::no_grad(|| self.net.forward_until(&x.f_to_device(self.device)?, stop))?;
        y.ok_or(SrError::Run(RunError::Interrupted))
    }

    /// `tile_process`: the raw network over `x` [1, C, H, W] (padded, on any device) one tile per
    /// forward call, each tile's output cropped of its context and pasted without blending into a
    /// CPU tensor [1, num_out_ch, scale H, scale W] (kept off the device so a GPU holds one tile
    /// at a time). An out-of-memory error of any tile is returned as is, for the caller to halve
    /// the tiles and retry. `stop` is asked before every tile and inside each.
    pub fn forward_tiled(&self, x: &Tensor, tiles: Tiles, stop: &mut Interrupt<'_>) -> Result<Tensor, SrError> {
        let c = self.config();
        if !tiles.fits(c.multiple()) {
            return Err(SrError::Input(format!(
                "tile size {} and tile pad {} must be positive multiples of {} at scale {} (the pixel-unshuffle)",
                tiles.size,
                tiles.pad,
                c.multiple(),
                c.scale
            )));
        }
        let (n, _, h, w) = x.size4()?;
        if n != 1 {
            return Err(SrError::Input(format!("tiled processing takes one image, got a batch of {n}")));
        }
        let s = c.scale as i64;
        let out = Tensor::f_zeros([1, c.num_out_ch, s * h, s * w], (Kind::Float, Device::Cpu))?;
        let region = |t: &Tensor, r: Rect| -> Result<Tensor, tch::TchError> {
            t.f_narrow(2, r.y as i64, r.h as i64)?.f_narrow(3, r.x as i64, r.w as i64)
        };
        for tile in tiles.grid(w as u32, h as u32) {
            let y = self.forward_raw_until(&region(x, tile.context)?, stop)?;
            region(&out, tile.place_in_output(c.scale))?.f_copy_(&region(&y, tile.crop_in_output(c.scale))?)?;
        }
        Ok(out)
    }

    /// `RealESRNet.process` on an RGB image: /255, reflect-pad (scales 2 and 1), the network whole
    /// or in `tiles`, crop to [`output_size`] (`exact`: the reference's size, see there), clamp
    /// to [0, 1], `round(x * 255)`. The reference converts BGR to RGB and back; ours is RGB.
    pub fn process(&self, img: &RgbImage, tiles: Option<Tiles>, exact: bool) -> Result<RgbImage, SrError> {
        self.process_until(img, tiles, exact, &mut || false)
    }

    /// [`Self::process`], asking `stop` between the network's blocks and tiles: a cancel stops a
    /// large photo within a block's time instead of its whole super-resolution.
    pub fn process_until(&self, img: &RgbImage, tiles: Option<Tiles>, exact: bool, stop: &mut Interrupt<'_>) -> Result<RgbImage, SrError> {
        let c = self.config();
        if c.num_in_ch != 3 || c.num_out_ch != 3 {
            return Err(SrError::Input(format!("{c} does not map RGB to RGB")));
        }
        let x = padded_input(img, c.scale)?;
        let raw = match tiles {
            None => self.forward_raw_until(&x, stop)?.f_to_device(Device::Cpu)?,
            Some(t) => self.forward_tiled(&x, t, stop)?,
        };
        let (w, h) = output_size(img.width(), img.height(), c.scale, exact);
        to_image(&raw, w, h)
    }
}

/// Bottom/right padding that makes `side` a multiple of `multiple` (`RealESRNet.process`'s `h_pad`).
fn pad_to(side: u32, multiple: u32) -> u32 {
    (multiple - side % multiple) % multiple
}

/// The pixel-unshuffle in front of scale 2 (1) needs sides divisible by 2 (4); scale 4 none.
fn multiple_for(scale: u32) -> u32 {
    (4 / scale.max(1)).max(1)
}

/// The output size of [`Upscaler::process`] for a `w` x `h` input — the one place that decides it.
///
/// `exact == true` is GPEN's: `RealESRNet.process` reflect-pads the input by `w_pad`/`h_pad`
/// pixels, and then crops only `w_pad`/`h_pad` *output* pixels instead of `scale` times as many,
/// so an odd side keeps `scale - 1` padded rows or columns (x2 of 61x47 is 123x95, not 122x94).
/// The whole GPEN pipeline then works at that size (the input is resized to it), so matching the
/// reference needs it. `exact == false`, our default, crops to exactly `scale` x the input,
/// dropping the reflected pixels. Scale 4 pads nothing and scale 1's quirk cancels (pad and crop
/// agree at scale 1), so both modes only differ at scale 2 on odd sides.
pub fn output_size(w: u32, h: u32, scale: u32, exact: bool) -> (u32, u32) {
    let m = multiple_for(scale);
    if exact {
        let (pw, ph) = (pad_to(w, m), pad_to(h, m));
        (scale * (w + pw) - pw, scale * (h + ph) - ph)
    } else {
        (scale * w, scale * h)
    }
}

/// The network input `RealESRNet.process` builds from an RGB image: `x.astype(float32) / 255.`,
/// NCHW [1, 3, H', W'] on the CPU, reflect-padded at the bottom and right (numpy / `F.pad(mode=
/// 'reflect')`: the border pixel is not repeated) to multiples of 2 for scale 2, 4 for scale 1.
pub fn padded_input(img: &RgbImage, scale: u32) -> Result<Tensor, SrError> {
    let (w, h) = img.dimensions();
    let m = multiple_for(scale);
    let (pw, ph) = (pad_to(w, m), pad_to(h, m));
    // Reflection needs a pad smaller than the side (as in PyTorch); tiny images are refused here.
    if w == 0 || h == 0 || pw >= w || ph >= h {
        return Err(SrError::Input(format!("a {w}x{h} image is too small for x{scale} super-resolution")));
    }
    let lut: Vec<f32> = (0..256).map(|v| v as f32 / 255.0).collect();
    let plane = (w * h) as usize;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = lut[px.0[c] as usize];
        }
    }
    let x = Tensor::f_from_slice(&data)?.f_view([1, 3, h as i64, w as i64])?;
    if pw == 0 && ph == 0 { Ok(x) } else { Ok(x.f_reflection_pad2d([0, pw as i64, 0, ph as i64])?) }
}

/// The top-left `w` x `h` of a raw output [1, 3, H, W], clamped to [0, 1], `round(x * 255)` in
/// f32 (round half to even, as numpy), as an 8-bit RGB image.
fn to_image(raw: &Tensor, w: u32, h: u32) -> Result<RgbImage, SrError> {
    let (_, _, rh, rw) = raw.size4()?;
    if (w as i64) > rw || (h as i64) > rh {
        return Err(SrError::Input(format!("output {rw}x{rh} smaller than the requested {w}x{h}")));
    }
    let v = raw
        .f_narrow(2, 0, h as i64)?
        .f_narrow(3, 0, w as i64)?
        .f_to_device(Device::Cpu)?
        .f_clamp(0.0, 1.0)?
        .f_mul_scalar(255.0)?
        .f_round()?
        .f_to_kind(Kind::Uint8)?
        .f_squeeze_dim(0)?
        .f_permute([1, 2, 0])?
        .f_contiguous()?;
    let bytes = Vec::<u8>::try_from(&v.f_view([-1])?).map_err(SrError::from)?;
    RgbImage::from_raw(w, h, bytes).ok_or_else(|| SrError::Input("output buffer of the wrong size".into()))
}

/// Peak activation memory of one forward call, in bytes per input pixel (fp32, batch 1, weights
/// not included), for tile planning: a tile needs about `(size + 2 pad)²` times this.
///
/// Our forward pass keeps the input `x` (C = num_in_ch·u² floats per body pixel, u = the unshuffle
/// factor 4/scale, the body working at 1/u² of the input pixels), and every 3x3 conv holds its
/// input, a working copy of it, a working output and the output (oneDNN's reorders on the CPU).
/// Per body pixel, with F = num_feat, G = num_grow_ch, D = F + 4G (the dense block's inputs):
/// - body, at a dense block's conv5: `feat`, the RRDB's and the RDB's inputs (3F), the four
///   growth maps and a partial sum (D), conv5's outputs (2F), bounded by 5F + 2D (F = G = 32:
///   480);
/// - tail, conv_up2 or conv_hr at 16x the body's pixels: 4 · F · 16 = 64F (F = 32: 2048);
/// - conv_last: 2 · 16F + 2 · 16 · num_out_ch.
///
/// The upsampled tail dominates by 4x: the peak is `(C + 64F) / u²` floats per input pixel.
/// Released GPEN x2 (F 32, u 2): (12 + 2048) / 4 = 515 floats = 2060 B; x4: 8204 B; x1: 524 B;
/// Real-ESRGAN x4plus (F 64): 16396 B. (The tiled path's CPU output image, 12·scale² B per
/// input pixel, comes on top.)
///
/// Measured peak-RSS growth of one forward call on the CPU (libtorch 2.13, 2 Zen 5 cores, glibc's
/// mmap threshold fixed; the ignored test `measure_rss_growth` in tests/sr_rrdbnet.rs): released
/// x2 1861-1890 B/px (192² and 288² inputs), x4 7416-7422 B/px, x1 464 B/px — the estimate is
/// 9-13 % above, an upper bound (the convs' working copies overlap a little less than counted).
pub fn bytes_per_input_pixel(config: &RrdbConfig) -> u64 {
    let u2 = (config.unshuffle() * config.unshuffle()) as u64;
    let (f, g, out) = (config.num_feat as u64, config.num_grow_ch as u64, config.num_out_ch as u64);
    let c_in = config.num_in_ch as u64 * u2;
    let d = f + 4 * g;
    let first = c_in + if u2 > 1 { c_in } else { 0 } + c_in + 2 * f;
    let body = if config.num_block > 0 { 5 * f + 2 * d } else { 0 };
    let tail = (4 * f * 16).max(2 * 16 * f + 2 * 16 * out);
    let per_body_px = c_in + first.max(body).max(tail);
    (per_body_px * 4).div_ceil(u2)
}

/// The configuration of an RRDBNet file, from its shapes (nothing is loaded).
pub fn read_config(path: &Path) -> Result<RrdbConfig, SrError> {
    infer_config(&checkpoint::read_shapes(path)?).map_err(|reason| SrError::NotRrdb { path: path.into(), reason })
}

/// The configuration from the shapes: num_feat and the scale from `conv_first` (its input is 3
/// channels unshuffled: 48 -> x1, 12 -> x2, 3 -> x4), num_block from the `body.N` count,
/// num_grow_ch from `body.0.rdb1.conv1`. The strict key check that follows verifies the rest.
pub fn infer_config(shapes: &Shapes) -> Result<RrdbConfig, ShapeError> {
    let first = shapes.get("conv_first.weight").ok_or("no `conv_first.weight` (not an RRDBNet state dict)")?;
    let &[num_feat, c_in, 3, 3] = first.as_slice() else {
        return Err(format!("`conv_first.weight` has shape {first:?}, expected [num_feat, C, 3, 3]").into());
    };
    let scale = match c_in {
        48 => 1,
        12 => 2,
        3 => 4,
        _ => return Err(format!("`conv_first.weight` takes {c_in} channels; RGB RRDBNet takes 48 (x1), 12 (x2) or 3 (x4)").into()),
    };
    let num_block = (0..).take_while(|i| shapes.contains_key(&format!("body.{i}.rdb1.conv1.weight"))).count() as i64;
    let conv1 = shapes.get("body.0.rdb1.conv1.weight").ok_or("no `body.0.rdb1.conv1.weight` (no RRDB blocks)")?;
    let num_grow_ch = *conv1.first().ok_or("`body.0.rdb1.conv1.weight` is a scalar")?;
    let num_out_ch = shapes.get("conv_last.weight").and_then(|s| s.first().copied()).ok_or("no `conv_last.weight`")?;
    Ok(RrdbConfig { num_in_ch: 3, num_out_ch, num_feat, num_block, num_grow_ch, scale })
}
