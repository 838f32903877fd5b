//! GPEN's face parser (`face_parse/face_parsing.py::FaceParse` with `ParseNet`), which turns each
//! restored face into the 0/255 mask that decides where it is pasted (gpen.md §4.6), and the
//! mask's post-processing ([`mask`]).
//!
//! Weights are `ParseNet-latest.pth` (a bare state dict, strictly loaded by the reference).

mod blocks;
pub mod mask;
mod parsenet;
mod subpixel;

pub use mask::{MASK_BORDER, mask_postprocess, mask_to_unit};
pub use parsenet::{ParseNet, ParseNetConfig};

use crate::checkpoint::{self, CheckpointError, Shapes};
use crate::error::RunError;
use crate::imgproc::resize_linear_rgb;
use image::{GrayImage, RgbImage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// `FaceParse.MASK_COLORMAP`: background (0), hat (14) and cloth (18) are outside the face;
/// skin, features, hair, ears, neck and accessories are inside.
pub const MASK_COLORMAP: [u8; 19] = [0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 255, 255, 255, 0];

/// The input size of the released `ParseNet-latest.pth`, the size `FaceParse` runs it at. The size
/// is not in the weights — ParseNet is fully convolutional and `in_size` only fixes the number of
/// down steps together with `min_feat_size` — so another parser's size is the user's to give
/// (`--parser-size`).
pub const RELEASED_SIZE: u32 = 512;

/// The size a parser of `config` runs at: `given` (the user's `--parser-size`), else
/// [`RELEASED_SIZE`] for the released configuration (compared by [`ParseNetConfig::effective`]);
/// `None` for another configuration without a size.
pub fn input_size(config: &ParseNetConfig, given: Option<u32>) -> Option<u32> {
    given.or_else(|| (config.effective() == ParseNetConfig::RELEASED.effective()).then_some(RELEASED_SIZE))
}

/// Checks that `path` holds a ParseNet whose weights load strictly, and says which: "ParseNet 512"
/// for the released file, else its configuration (whose input size the user gives).
pub fn check_file(path: &Path) -> Result<String, ParseError> {
    let shapes = checkpoint::read_shapes(path)?;
    let config = infer_config(&shapes).map_err(|reason| ParseError::NotParseNet { path: path.into(), reason })?;
    let size = input_size(&config, None);
    // The weights do not depend on the input size: any size the network accepts checks them.
    FaceParser::load(path, Some(size.unwrap_or(2 << config.down_steps)), Device::Cpu)?;
    Ok(match size {
        Some(s) => format!("ParseNet {s}"),
        None => format!("{config}, input size not recorded"),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The file is missing, unreadable, or its keys and shapes do not match the network.
    #[error(transparent)]
    Weights(#[from] CheckpointError),
    #[error("{} does not hold a ParseNet face parser: {reason}", path.display())]
    NotParseNet { path: PathBuf, reason: crate::error::ShapeError },
    #[error(
        "{} holds {config}, not the released ParseNet, and its input size is not in the weights; \
         give the size it was trained at with --parser-size N", path.display()
    )]
    UnknownSize { path: PathBuf, config: ParseNetConfig },
    #[error("face parser: {0}")]
    Input(String),
    /// A libtorch failure while running the network (out of memory, broken device, ...).
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<tch::TchError> for ParseError {
    fn from(err: tch::TchError) -> Self {
        ParseError::Run(err.into())
    }
}

/// ParseNet with its weights, on one device, and the size faces are resized to.
#[derive(Debug)]
pub struct FaceParser {
    /// Holds its tensors itself (the loading `VarStore` is dropped).
    net: ParseNet,
    config: ParseNetConfig,
    size: u32,
    device: Device,
}

impl FaceParser {
    /// Loads a ParseNet checkpoint; the configuration is inferred from its shapes, the input size
    /// is `size` (a multiple of `2^down_steps`, at least twice that so the innermost reflection pad
    /// has room), or [`RELEASED_SIZE`] for the released configuration ([`input_size`]); another
    /// configuration without a size is [`ParseError::UnknownSize`].
    ///
    /// The network runs in its inference form ([`ParseNet::fold`]); [`FaceParser::load_unfolded`]
    /// keeps the checkpoint's layers as they are.
    pub fn load(path: &Path, size: Option<u32>, device: Device) -> Result<Self, ParseError> {
        Self::load_as(path, size, device, true)
    }

    /// [`FaceParser::load`] without folding: every BatchNorm and upsampling as the reference runs
    /// it (to check the folded form against, and to time both).
    pub fn load_unfolded(path: &Path, size: Option<u32>, device: Device) -> Result<Self, ParseError> {
        Self::load_as(path, size, device, false)
    }

    fn load_as(path: &Path, size: Option<u32>, device: Device, fold: bool) -> Result<Self, ParseError> {
        if !path.is_file() {
            return Err(CheckpointError::unreadable(path, "face parser weights (ParseNet-latest.pth) not found").into());
        }
        let found: BTreeMap<String, Tensor> = checkpoint::unwrap(checkpoint::read_tensors(path)?).into_iter().collect();
        let shapes: Shapes = found.iter().map(|(k, t)| (k.clone(), t.size())).collect();
        let config = infer_config(&shapes).map_err(|reason| ParseError::NotParseNet { path: path.into(), reason })?;
        let size = input_size(&config, size).ok_or(ParseError::UnknownSize { path: path.into(), config })?;
        let (net, mut vs) = Self::build(config, size, device)?;
        // `num_batches_tracked` is a training counter; a file without it loads all the same.
        checkpoint::load_strict(&mut vs, &found, path, &config.to_string(), |k| k.ends_with(".num_batches_tracked"))?;
        Self::finish(net, config, size, device, fold)
    }

    /// The network with placeholder weights (zeros, unit BatchNorm), folded, for benchmarks and
    /// memory measurements where the values do not matter.
    pub fn with_config(config: ParseNetConfig, size: u32, device: Device) -> Result<Self, ParseError> {
        let (net, _vs) = Self::build(config, size, device)?;
        Self::finish(net, config, size, device, true)
    }

    /// [`FaceParser::with_config`] without folding (the checkpoint's layers, for comparisons).
    pub fn with_config_unfolded(config: ParseNetConfig, size: u32, device: Device) -> Result<Self, ParseError> {
        let (net, _vs) = Self::build(config, size, device)?;
        Self::finish(net, config, size, device, false)
    }

    fn finish(mut net: ParseNet, config: ParseNetConfig, size: u32, device: Device, fold: bool) -> Result<Self, ParseError> {
        if fold {
            tch::no_grad(|| net.fold())?;
        }
        Ok(FaceParser { net, config, size, device })
    }

    /// The network's layers for `config` in a `VarStore` to load into, after checking `size`.
    fn build(config: ParseNetConfig, size: u32, device: Device) -> Result<(ParseNet, nn::VarStore), ParseError> {
        let unit = 1u32 << config.down_steps;
        if size == 0 || !size.is_multiple_of(unit) || size / unit < 2 || config.up_steps != config.down_steps {
            return Err(ParseError::Input(format!(
                "input size {size} does not fit {config}: it must be a multiple of {unit} and at least {}, \
                 with as many up as down steps",
                2 * unit
            )));
        }
        let vs = nn::VarStore::new(device);
        let net = ParseNet::new(&vs.root(), &config);
        Ok((net, vs))
    }

    /// The parser's input (and mask) size.
    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn config(&self) -> ParseNetConfig {
        self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The raw network: `x` [N, 3, S, S] (RGB in [-1, 1]) -> (mask logits [N, 19, S, S],
    /// out_img [N, 3, S, S]).
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor), ParseError> {
        self.check_input(x)?;
        Ok(tch::no_grad(|| self.net.forward(&x.to_device(self.device)))?)
    }

    /// `FaceParse.process` for each face: the 0/255 masks at the parser size. On the CPU the faces
    /// go through the network [`CPU_BATCH`] at a time, on a GPU all in one call.
    pub fn parse(&self, faces: &[RgbImage]) -> Result<Vec<GrayImage>, ParseError> {
        Ok(colour(self.parse_labels(faces)?))
    }

    /// [`FaceParser::parse`] in exactly one network call, whatever the device (for benchmarks).
    pub fn parse_batch(&self, faces: &[RgbImage]) -> Result<Vec<GrayImage>, ParseError> {
        Ok(colour(self.labels_in_one_call(faces)?))
    }

    /// The argmax labels (0..19) per face, before the colour map.
    pub fn parse_labels(&self, faces: &[RgbImage]) -> Result<Vec<GrayImage>, ParseError> {
        let per_call = if self.device == Device::Cpu { CPU_BATCH } else { faces.len().max(1) };
        let mut labels = Vec::with_capacity(faces.len());
        for chunk in faces.chunks(per_call) {
            labels.extend(self.labels_in_one_call(chunk)?);
        }
        Ok(labels)
    }

    fn labels_in_one_call(&self, faces: &[RgbImage]) -> Result<Vec<GrayImage>, ParseError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.input_tensor(faces)?;
        let labels = tch::no_grad(|| -> Result<Tensor, ParseError> {
            let logits = self.net.forward_mask(&x.f_to_device(self.device)?)?;
            Ok(logits.f_argmax(1, false)?.f_to_kind(Kind::Uint8)?.f_to_device(Device::Cpu)?.f_contiguous()?)
        })?;
        let flat = Vec::<u8>::try_from(&labels.f_view([-1])?).map_err(ParseError::from)?;
        let plane = (self.size * self.size) as usize;
        Ok(flat.chunks_exact(plane).map(|c| GrayImage::from_raw(self.size, self.size, c.to_vec()).expect("plane of size x size")).collect())
    }

    /// `FaceParse.img2tensor(cv2.resize(face, (S, S)))` for each face, on the CPU: OpenCV's 8-bit
    /// bilinear resize, then `x / 255 * 2 - 1` in f64 rounded to f32, RGB (the reference flips
    /// its BGR input to RGB; our images are RGB already), NCHW.
    pub fn input_tensor(&self, faces: &[RgbImage]) -> Result<Tensor, ParseError> {
        if faces.iter().any(|f| f.width() == 0 || f.height() == 0) {
            return Err(ParseError::Input("empty face image".into()));
        }
        let lut: Vec<f32> = (0..256).map(|v| (v as f64 / 255.0 * 2.0 - 1.0) as f32).collect();
        let s = self.size as usize;
        let mut data = vec![0f32; faces.len() * 3 * s * s];
        for (face, out) in faces.iter().zip(data.chunks_exact_mut(3 * s * s)) {
            let img =
                if face.dimensions() == (self.size, self.size) { face.clone() } else { resize_linear_rgb(face, self.size, self.size) };
            for (i, px) in img.pixels().enumerate() {
                for c in 0..3 {
                    out[c * s * s + i] = lut[px.0[c] as usize];
                }
            }
        }
        Ok(Tensor::f_from_slice(&data)?.f_view([faces.len() as i64, 3, s as i64, s as i64])?)
    }

    fn check_input(&self, x: &Tensor) -> Result<(), ParseError> {
        let s = self.size as i64;
        match x.size().as_slice() {
            &[n, 3, h, w] if n > 0 && h == s && w == s && x.kind() == Kind::Float => Ok(()),
            dims => Err(ParseError::Input(format!("expects input [N, 3, {s}, {s}] float, got {dims:?} {:?}", x.kind()))),
        }
    }

    /// Estimated peak activation bytes per face at this parser's size, see [`bytes_per_face`].
    pub fn bytes_per_face(&self) -> u64 {
        peak_activation_bytes(&self.config, self.size)
    }
}

/// Faces per parser call on the CPU. One: a batch adds time per face there (more memory traffic
/// for the same arithmetic; `bench face-path`, docs/BENCHMARKS.md); a GPU takes the batch whole.
pub const CPU_BATCH: usize = 1;

/// The 0/255 face masks of parsing labels (`MASK_COLORMAP`).
fn colour(mut labels: Vec<GrayImage>) -> Vec<GrayImage> {
    for m in &mut labels {
        m.iter_mut().for_each(|v| *v = MASK_COLORMAP[*v as usize]);
    }
    labels
}

/// Peak activation memory of one face through the released ParseNet at input size `size`, for
/// batch planning (weights, 85 MB, not included). See [`peak_activation_bytes`] for the arithmetic.
pub fn bytes_per_face(size: u32) -> u64 {
    peak_activation_bytes(&ParseNetConfig::RELEASED, size)
}

/// The largest set of f32 tensors alive at once in the unfolded forward pass (fp32, batch 1), an
/// upper bound of the folded one the product runs (which makes no padded or upsampled copies).
///
/// Every convolution also holds a working copy of its (padded) input and of its output while it
/// runs (oneDNN's reorders on the CPU). A residual block on input `x` (c_in at h x w, output c_out
/// at H x W, `P` = its padded input, c_in at (H+2)(W+2), `o` = one c_out x H x W map) then peaks
/// at the largest of: building `P` (`x + upsampled + P`), conv1 running (`x + P + shortcut + P' +
/// 2 o`), conv2 running (`x + shortcut + o + pad(o) + pad(o)' + 2 o`); the body's blocks also keep
/// the encoder output alive. The maximum is the last decoder block at full size: for the released
/// parser at 512, x = 128x256², P = 128x514², o = 64x512²: 126.35 M floats = 505 MB per face
/// (at 256: 127 MB; the golden 256 configuration: 31.7 MB).
///
/// Measured peak-RSS growth on the CPU (libtorch 2.13, 2 shared cores, two runs; the ignored test
/// `measure_rss_growth` in tests/parse_parsenet.rs): released configuration at 512, batch 1:
/// 505-539 MB; golden configuration at 256: 36-45 MB for batch 1, 157-176 MB for batch 4
/// (37-47 MB per additional face).
pub fn peak_activation_bytes(config: &ParseNetConfig, size: u32) -> u64 {
    let (down, body, up) = config.channels();
    let s = size as u64;
    let area = |c: i64, n: u64| c as u64 * n * n;
    // Stem: input, padded input and its copy, output and its copy.
    let mut peak = area(3, s) + 2 * area(3, s + 2) + 2 * area(config.base_ch, s);
    let block = |c_in: i64, c_out: i64, n_in: u64, n_out: u64, up: bool, keep: u64| -> u64 {
        let x = area(c_in, n_in);
        let n_pad = if up { n_out } else { n_in } + 2;
        let padded = area(c_in, n_pad);
        let build = x + if up { area(c_in, n_out) } else { 0 } + padded;
        let o = area(c_out, n_out);
        let conv1 = x + 2 * padded + o + 2 * o;
        let conv2 = x + o + o + 2 * area(c_out, n_out + 2) + 2 * o;
        keep + build.max(conv1).max(conv2)
    };
    let mut n = s;
    for &(a, b) in &down {
        peak = peak.max(block(a, b, n, n / 2, false, 0));
        n /= 2;
    }
    for _ in 0..config.res_depth {
        peak = peak.max(block(body, body, n, n, false, area(body, n)));
    }
    for &(a, b) in &up {
        peak = peak.max(block(a, b, n, n * 2, true, 0));
        n *= 2;
    }
    // Heads: the decoder output, its padded copy twice, the logits twice and the RGB head.
    let head = config.head_ch();
    peak = peak.max(area(head, s) + 2 * area(head, s + 2) + area(2 * config.parsing_ch + 3, s));
    peak * 4
}

/// The configuration from the shapes: `base_ch` from the stem, the step and depth counts from the
/// numbered blocks, `ch_range` as the tightest range that explains the blocks' widths (the same
/// layers as the official range, see [`ParseNetConfig::effective`]). The strict key check that
/// follows verifies every other shape.
pub fn infer_config(shapes: &Shapes) -> Result<ParseNetConfig, crate::error::ShapeError> {
    let stem = shapes.get("encoder.0.conv2d.weight").ok_or("no `encoder.0.conv2d.weight` (not a ParseNet state dict)")?;
    let [base_ch, 3, 3, 3] = stem.as_slice() else {
        return Err(format!("`encoder.0.conv2d.weight` has shape {stem:?}, expected [base_ch, 3, 3, 3]").into());
    };
    let parsing_ch =
        shapes.get("out_mask_conv.conv2d.weight").and_then(|s| s.first().copied()).ok_or("no `out_mask_conv.conv2d.weight`")?;
    // Blocks numbered from `first` on, as long as they exist (the encoder's 0 is the stem).
    let count = |prefix: &str, first: u32| -> u32 {
        (first..).take_while(|i| shapes.contains_key(&format!("{prefix}.{i}.conv1.conv2d.weight"))).count() as u32
    };
    let (down_steps, res_depth, up_steps) = (count("encoder", 1), count("body", 0), count("decoder", 0));
    let widths: Vec<i64> = shapes
        .iter()
        .filter(|(k, _)| k.ends_with(".conv1.conv2d.weight"))
        .flat_map(|(_, s)| s.iter().take(2).copied().collect::<Vec<_>>())
        .collect();
    let (Some(&min_ch), Some(&max_ch)) = (widths.iter().min(), widths.iter().max()) else {
        return Err("no residual blocks".into());
    };
    if down_steps > 10 || up_steps > 10 {
        return Err(format!("{down_steps} down and {up_steps} up steps").into());
    }
    Ok(ParseNetConfig { base_ch: *base_ch, min_ch, max_ch, down_steps, up_steps, res_depth, parsing_ch })
}
