//! Identity: how much a restored face still looks like the person, measured as GPEN's authors
//! measure it in training (`training/loss/id_loss.py`, `IDLoss`): the cosine similarity of two
//! ArcFace IR-SE embeddings ([`backbone`]), each taken by `IDLoss.extract_feats` — RGB in
//! [-1, 1], the crop `[35s:-33s, 32s:-36s]` of an S x S face with `s = S // 256` (the inner face
//! of GPEN's aligned crops), average-pooled to 112 x 112.
//!
//! Weights are `model_ir_se50.pth` (a bare state dict, fp32 or fp16, strictly loaded as the
//! reference does); the configuration is read from its shapes ([`infer_config`]).

mod backbone;
mod bottleneck;
pub mod guard;
mod layers;

pub use backbone::{Backbone, INPUT_SIDE, IrSeConfig, Unit, infer_config};
pub use guard::{FaceIdentifier, FaceIdentity, Guard, GuardMode};

use crate::checkpoint::{self, CheckpointError, Shapes};
use crate::error::RunError;
use image::RgbImage;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// The released weights' file name (GPEN's `weights/model_ir_se50.pth`).
pub const IDENTITY_FILE: &str = "model_ir_se50.pth";

/// `extract_feats` works on sides that are multiples of this; other faces are resized to it.
pub const UNIT_SIDE: u32 = 256;

/// A face's embedding: a unit vector.
pub type Embedding = Vec<f32>;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file is missing, unreadable, or its keys and shapes do not match the network.
    #[error(transparent)]
    Weights(#[from] CheckpointError),
    #[error("{} does not hold an ArcFace IR-SE network: {reason}", path.display())]
    NotArcFace { path: PathBuf, reason: crate::error::ShapeError },
    #[error("identity network: {0}")]
    Input(String),
    /// A libtorch failure while running the network (out of memory, broken device, ...).
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<tch::TchError> for IdentityError {
    fn from(err: tch::TchError) -> Self {
        IdentityError::Run(err.into())
    }
}

impl IdentityError {
    pub fn is_oom(&self) -> bool {
        matches!(self, IdentityError::Run(e) if e.is_oom())
    }
}

/// The IR-SE backbone with its weights, on one device.
#[derive(Debug)]
pub struct IdentityNet {
    net: Backbone,
    config: IrSeConfig,
    device: Device,
    /// Keeps the loaded tensors alive.
    _vs: nn::VarStore,
}

impl IdentityNet {
    /// Loads an IR-SE checkpoint (fp32 or fp16; computed in fp32), its configuration inferred from
    /// the shapes, every key and shape checked.
    pub fn load(path: &Path, device: Device) -> Result<Self, IdentityError> {
        if !path.is_file() {
            return Err(CheckpointError::unreadable(path, format!("identity weights ({IDENTITY_FILE}) not found")).into());
        }
        let found: BTreeMap<String, Tensor> = checkpoint::unwrap(checkpoint::read_tensors(path)?).into_iter().collect();
        let shapes: Shapes = found.iter().map(|(k, t)| (k.clone(), t.size())).collect();
        let config = infer_config(&shapes).map_err(|reason| IdentityError::NotArcFace { path: path.into(), reason })?;
        let mut vs = nn::VarStore::new(device);
        let net = Backbone::new(&vs.root(), &config);
        // `num_batches_tracked` is a training counter; a file without it loads all the same.
        checkpoint::load_strict(&mut vs, &found, path, &config.to_string(), |k| k.ends_with(".num_batches_tracked"))?;
        Ok(IdentityNet { net, config, device, _vs: vs })
    }

    /// The network with placeholder weights (zeros, unit norms), for benchmarks and memory
    /// measurements where the values do not matter.
    pub fn with_config(config: IrSeConfig, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let net = Backbone::new(&vs.root(), &config);
        IdentityNet { net, config, device, _vs: vs }
    }

    pub fn config(&self) -> &IrSeConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// `extract_feats`' crop and pooling: `x` [N, 3, S, S] with S a multiple of 256 ->
    /// [N, 3, 112, 112].
    pub fn pooled(&self, x: &Tensor) -> Result<Tensor, IdentityError> {
        let s = match x.size().as_slice() {
            &[n, 3, h, w] if n > 0 && h == w && h % UNIT_SIDE as i64 == 0 && h > 0 && x.kind() == Kind::Float => h / UNIT_SIDE as i64,
            dims => {
                return Err(IdentityError::Input(format!(
                    "expects [N, 3, S, S] float with S a multiple of 256, got {dims:?} {:?}",
                    x.kind()
                )));
            }
        };
        let side = x.size()[2];
        let crop = x.f_narrow(2, 35 * s, side - 68 * s)?.f_narrow(3, 32 * s, side - 68 * s)?;
        Ok(crop.f_to_device(self.device)?.f_adaptive_avg_pool2d([INPUT_SIDE, INPUT_SIDE])?)
    }

    /// `IDLoss.extract_feats`: `x` [N, 3, S, S] (RGB in [-1, 1], S a multiple of 256) -> unit
    /// embeddings [N, E] on the network's device.
    pub fn extract_feats(&self, x: &Tensor) -> Result<Tensor, IdentityError> {
        tch::no_grad(|| -> Result<Tensor, IdentityError> { Ok(self.net.forward(&self.pooled(x)?)?) })
    }

    /// The embedding of every face, in one network call per side (faces of one side usually: a
    /// run's crops all have the restorer's). Faces whose side is not a multiple of 256, or that are
    /// not square, are first resized to 256 ([`prepared`]).
    pub fn embed(&self, faces: &[&RgbImage]) -> Result<Vec<Embedding>, IdentityError> {
        let prepared: Vec<Cow<RgbImage>> = faces.iter().map(|f| prepared(f)).collect();
        let mut out: Vec<Option<Embedding>> = vec![None; faces.len()];
        let mut sides: Vec<u32> = prepared.iter().map(|f| f.width()).collect();
        sides.sort_unstable();
        sides.dedup();
        for side in sides {
            let idx: Vec<usize> = (0..faces.len()).filter(|&i| prepared[i].width() == side).collect();
            let group: Vec<&RgbImage> = idx.iter().map(|&i| prepared[i].as_ref()).collect();
            let feats = self.extract_feats(&input_tensor(&group)?)?.f_to_device(Device::Cpu)?.f_contiguous()?;
            let e = self.config.embedding as usize;
            let flat = Vec::<f32>::try_from(&feats.f_view([-1])?).map_err(IdentityError::from)?;
            for (&i, v) in idx.iter().zip(flat.chunks_exact(e)) {
                out[i] = Some(v.to_vec());
            }
        }
        Ok(out.into_iter().map(|e| e.expect("every face is in a group")).collect())
    }

    /// Estimated peak activation bytes per face, see [`bytes_per_face`].
    pub fn bytes_per_face(&self, side: u32) -> u64 {
        bytes_per_face(&self.config, side)
    }

    /// Frees cached device memory after an out-of-memory error (CUDA only).
    pub fn release_cache(&self) {
        if self.device.is_cuda() {
            let _ = crate::sys::memory::empty_cache();
        }
    }
}

/// The face as `extract_feats` takes it: as it is when square with a side that is a multiple of
/// 256 (GPEN's crops), else resized to 256 x 256 (OpenCV's bilinear, as everywhere else).
pub fn prepared(face: &RgbImage) -> Cow<'_, RgbImage> {
    if needs_resize(face.width(), face.height()) {
        Cow::Owned(crate::imgproc::resize_linear_rgb(face, UNIT_SIDE, UNIT_SIDE))
    } else {
        Cow::Borrowed(face)
    }
}

/// True when a `w` x `h` face is resized to 256 before it is measured.
pub fn needs_resize(w: u32, h: u32) -> bool {
    w != h || w == 0 || !w.is_multiple_of(UNIT_SIDE)
}

/// Faces of one square side as the network's input: `float32(u8) / 255 * 2 - 1` in float32, RGB,
/// NCHW, on the CPU.
pub fn input_tensor(faces: &[&RgbImage]) -> Result<Tensor, IdentityError> {
    let Some(first) = faces.first() else { return Err(IdentityError::Input("no faces".into())) };
    let s = first.width() as usize;
    if faces.iter().any(|f| f.dimensions() != (s as u32, s as u32)) || s == 0 {
        return Err(IdentityError::Input("faces of one call must be square and of one size".into()));
    }
    let lut: Vec<f32> = (0..256).map(|v| v as f32 / 255.0 * 2.0 - 1.0).collect();
    let plane = s * s;
    let mut data = vec![0f32; faces.len() * 3 * plane];
    for (face, out) in faces.iter().zip(data.chunks_exact_mut(3 * plane)) {
        for (i, px) in face.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = lut[px.0[c] as usize];
            }
        }
    }
    Ok(Tensor::f_from_slice(&data)?.f_view([faces.len() as i64, 3, s as i64, s as i64])?)
}

/// The cosine similarity of two embeddings (`IDLoss`' `dot` of unit vectors), in [-1, 1].
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>().clamp(-1.0, 1.0) as f32
}

/// Peak activation memory of one face of side `side` through `config` (weights not included):
/// the face's input tensor and its pooled crop, then the largest unit — its input, the BatchNorm's
/// output, conv1's output and working copy at the input's side, conv2's output, the norm's and the
/// SE's outputs and the shortcut at the output's side (one working copy each on the CPU). IR-SE-50
/// at 512: about 3 MB of input and 26 MB in its first unit.
pub fn bytes_per_face(config: &IrSeConfig, side: u32) -> u64 {
    let input = 3 * (side as u64).pow(2) + 3 * (INPUT_SIDE as u64).pow(2);
    let mut n = INPUT_SIDE as u64;
    let mut peak = 3 * n * n + 2 * config.stem as u64 * n * n;
    for u in &config.units {
        let out = (n - 1) / u.stride as u64 + 1;
        let at_in = (2 * u.c_in as u64 + 2 * u.depth as u64) * n * n;
        let at_out = 4 * u.depth as u64 * out * out;
        peak = peak.max(at_in + at_out);
        n = out;
    }
    (input + peak) * 4
}

/// Checks that `path` holds an IR-SE backbone whose weights load strictly, and says which.
pub fn check_file(path: &Path) -> Result<String, IdentityError> {
    Ok(check_description(IdentityNet::load(path, Device::Cpu)?.config()))
}

/// "ArcFace IR-SE-50" for the released configuration, else the configuration.
pub fn check_description(config: &IrSeConfig) -> String {
    if *config == IrSeConfig::ir_se50() { "ArcFace IR-SE-50".to_string() } else { config.to_string() }
}
