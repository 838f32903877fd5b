//! RetinaFace as GPEN runs it (`face_detect/retinaface_detection.py`, from biubug6/Pytorch_Retinaface;
//! Deng et al., "RetinaFace: Single-stage Dense Face Localisation in the Wild", 2019), with either
//! body of the authors' code: ResNet-50 (`cfg_re50`, GPEN's `RetinaFace-R50.pth`) or
//! MobileNet-0.25 (`cfg_mnet`). [`FaceDetector::detect`] follows `detect()` step by step
//! (gpen.md §4.4); the module tree mirrors the checkpoint keys (gpen.md §5).

mod decode;
mod fpn;
mod heads;
mod layers;
mod mobilenet;
mod net;
mod priors;
mod resize;
mod resnet;
mod ssh;

pub use decode::{KEEP_TOP_K, NMS_THRESHOLD, TOP_K};
pub use priors::count as prior_count;

use super::{DetectError, Face, FaceDetector};
use crate::checkpoint::{self, CheckpointError, Shapes};
use image::RgbImage;
use net::Net;
use resize::Bgr;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor, nn};

/// GPEN's `confidence_threshold`.
pub const DEFAULT_THRESHOLD: f32 = 0.9;

/// The two bodies the authors' `RetinaFace` class can be built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backbone {
    /// `cfg_re50`, what GPEN ships and uses.
    ResNet50,
    /// `cfg_mnet` (biubug6's `mobilenet0.25_Final.pth`): 64x fewer parameters, FPN/SSH with LeakyReLU(0.1).
    MobileNet025,
}

impl Backbone {
    pub fn name(self) -> &'static str {
        match self {
            Backbone::ResNet50 => "ResNet-50",
            Backbone::MobileNet025 => "MobileNet-0.25",
        }
    }

    /// Which body a state dict holds, from its first-stage keys.
    /// The body a state dict's keys (tensors or shapes) describe.
    pub fn infer<V>(keys: &BTreeMap<String, V>) -> Option<Backbone> {
        let has = |prefix: &str| keys.keys().any(|k| k.starts_with(prefix));
        if has("body.layer1.") {
            Some(Backbone::ResNet50)
        } else if has("body.stage1.") {
            Some(Backbone::MobileNet025)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Peak activation memory of one detection, in bytes per pixel of the network input (the photo
/// after `detect()`'s resize to at most 1000 px when its longer side exceeds 1500), fp32, for
/// planning. Weights (R50 109 MB, MobileNet 1.7 MB) and libtorch's fixed overhead come on top.
///
/// Derived from the largest maps alive at once, in floats per input pixel (C channels at stride s
/// cost C / s^2). The network input (3) stays alive throughout, a block's input stays alive until
/// the block returns, and a conv + BN holds the conv and BN outputs together for a moment:
/// - ResNet-50: the first bottleneck of `layer1` at stride 4, in the shortcut: its 64-channel
///   input (4), the 256-channel expansion (16) and the shortcut's conv and BN outputs (2 x 16):
///   3 + 4 + 48 = 55 floats = 220 B. The stem peaks at 3 + 16 + 16 = 35, later stages at half
///   the previous size, the FPN, SSH and heads (stride 8 and coarser) at <= 12.
/// - MobileNet-0.25: the pointwise half of stage1's first block at stride 2: the network input
///   (3), the block's 8-channel input (2), its depthwise output (2), and the 16-channel pointwise
///   conv and BN outputs (4 + 4): 15 floats = 60 B.
///
/// Measured (peak RSS growth of one detection on a 1000x750 photo on the CPU, libtorch 2.13, test
/// `detection_memory_per_pixel_is_an_upper_bound`): with freed maps returned to the system at once
/// (`M_MMAP_THRESHOLD` 128 KiB) 220.3 and 62.5 B/px, the live maps as derived; with glibc's
/// default dynamic threshold, which keeps freed maps of up to 32 MB in the heap, 272 and 71-78
/// B/px. The figures returned add 1/3 to the live peak for that fragmentation: 294 and 80.
pub fn detection_bytes_per_pixel(backbone: Backbone) -> u64 {
    let live_floats: u64 = match backbone {
        Backbone::ResNet50 => 55,
        Backbone::MobileNet025 => 15,
    };
    (live_floats * 4 * 4).div_ceil(3)
}

/// A RetinaFace detector with its weights, on one device.
#[derive(Debug)]
pub struct RetinaFace {
    net: Net,
    // The network's tensors live in this store.
    vs: nn::VarStore,
    backbone: Backbone,
    device: Device,
    threshold: f32,
}

impl RetinaFace {
    /// Loads a RetinaFace state dict (the authors' `.pth`, or a `.safetensors`), in any form the
    /// reference loader accepts: a `state_dict` wrapper, a `module.` prefix (DataParallel, as in
    /// the released `RetinaFace-R50.pth`), fp16 tensors (converted to fp32). The body is inferred
    /// from the keys. Unlike the reference's `strict=False`, every missing, unexpected or
    /// wrong-shaped weight is an error: a partial load would detect garbage without complaint.
    /// Only `num_batches_tracked` (unused in eval mode) is ignored.
    pub fn load(path: &Path, device: Device) -> Result<Self, DetectError> {
        if !path.is_file() {
            return Err(CheckpointError::unreadable(path, "RetinaFace weights not found (GPEN's weights/RetinaFace-R50.pth)").into());
        }
        let found = state_dict(checkpoint::read_tensors(path)?);
        let Some(backbone) = Backbone::infer(&found) else {
            let example = found.keys().next().map_or("none".to_string(), |k| format!("`{k}`"));
            return Err(CheckpointError::unreadable(
                path,
                format!(
                    "it holds no RetinaFace weights: no `body.layer1.*` (ResNet-50) or `body.stage1.*` \
                     (MobileNet-0.25) keys; first key {example}"
                ),
            )
            .into());
        };
        let mut vs = nn::VarStore::new(device);
        let net = Net::new(&vs.root(), backbone);
        load_weights(&mut vs, &found, path, backbone)?;
        Ok(RetinaFace { net, vs, backbone, device, threshold: DEFAULT_THRESHOLD })
    }

    /// Replaces the score threshold (`confidence_threshold`; a face is kept when P(face) > t).
    pub fn with_threshold(mut self, threshold: f32) -> Result<Self, DetectError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(DetectError::Options(format!("the RetinaFace threshold is a probability in [0, 1], got {threshold}")));
        }
        self.threshold = threshold;
        Ok(self)
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn backbone(&self) -> Backbone {
        self.backbone
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Every registered weight with its shape: the checkpoint's keys without `module.` and
    /// `num_batches_tracked`.
    pub fn parameter_shapes(&self) -> Shapes {
        checkpoint::expected_shapes(&self.vs)
    }

    /// The network alone: [N, 3, H, W] float32 BGR minus the means (104, 117, 123), unscaled ->
    /// (loc [N, P, 4], conf [N, P, 2] after the softmax, landms [N, P, 10]), P = [`prior_count`].
    pub fn forward_raw(&self, input: &Tensor) -> Result<(Tensor, Tensor, Tensor), DetectError> {
        let size = input.size();
        if size.len() != 4 || size[1] != 3 || size[0] < 1 || input.kind() != Kind::Float {
            return Err(
                tch::TchError::Shape(format!("RetinaFace expects a float32 input [N, 3, H, W], got {:?} {size:?}", input.kind())).into()
            );
        }
        let input = input.f_to_device(self.device)?;
        Ok(tch::no_grad(|| self.net.forward(&input))?)
    }

    fn run(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError> {
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Ok(Vec::new());
        }
        let ss = resize::scale_for(width, height);
        let input = prepare_input(image)?;
        let (h, w) = (input.size()[2] as usize, input.size()[3] as usize);
        if h == 0 || w == 0 {
            // A sliver like 3000x1 shrinks to nothing.
            return Ok(Vec::new());
        }
        let (loc, conf, landms) = self.forward_raw(&input)?;
        drop(input);
        let (loc, conf, landms) = (to_vec(&loc)?, to_vec(&conf)?, to_vec(&landms)?);
        let priors = priors::priors(h, w);
        if conf.len() != priors.len() * 2 {
            return Err(tch::TchError::Shape(format!("{} priors but {} scores", priors.len(), conf.len() / 2)).into());
        }
        let faces = decode::select(&loc, &conf, &landms, &priors, (w, h), self.threshold);
        // Back to photo coordinates: `dets / ss` in f32, as numpy divides a float32 array by a
        // Python float. DEPARTURE: the reference divides the score column too (scores up to
        // 1 / ss on large photos); we keep the probability.
        let s = ss as f32;
        Ok(faces
            .into_iter()
            .map(|f| Face { bbox: f.bbox.map(|v| v / s), score: f.score, landmarks: f.landmarks.map(|p| p.map(|v| v / s)) })
            .collect())
    }
}

impl FaceDetector for RetinaFace {
    /// Faces in the reference's order (NMS order, highest score first), not largest first.
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError> {
        tch::no_grad(|| self.run(image))
    }
}

/// The input of `detect()`'s network for `photo`, exposed to check the resize against the
/// reference: [1, 3, H, W] float32 BGR minus the means, after the resize of photos over 1500 px.
pub fn prepare_input(photo: &RgbImage) -> Result<Tensor, DetectError> {
    let ss = resize::scale_for(photo.width(), photo.height());
    let mut bgr = Bgr::from_rgb(photo);
    if ss != 1.0 {
        bgr = resize::resize_linear(&bgr, ss);
    }
    bgr.subtract_means();
    network_input(bgr)
}

/// HWC data -> [1, 3, H, W] with channels-last strides: the reference transposes a numpy HWC
/// array without copying, and that layout is what its convolutions see.
fn network_input(bgr: Bgr) -> Result<Tensor, DetectError> {
    let t = Tensor::f_from_slice(&bgr.data)?;
    Ok(t.f_view([1, bgr.height as i64, bgr.width as i64, 3])?.f_permute([0, 3, 1, 2])?)
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, DetectError> {
    let t = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.f_view([-1])?;
    Ok(Vec::<f32>::try_from(&t)?)
}

/// The reference loader's unwrapping: the entries of a `state_dict` wrapper when there is one,
/// then a leading `module.` stripped from each key. `num_batches_tracked` is dropped.
fn state_dict(tensors: Vec<(String, Tensor)>) -> BTreeMap<String, Tensor> {
    checkpoint::unwrap(tensors).into_iter().filter(|(k, _)| !k.ends_with(".num_batches_tracked")).collect()
}

/// Copies `found` into `vs` after a strict key and shape check, converting to fp32.
fn load_weights(vs: &mut nn::VarStore, found: &BTreeMap<String, Tensor>, path: &Path, backbone: Backbone) -> Result<(), DetectError> {
    Ok(checkpoint::load_strict(vs, found, path, &format!("RetinaFace {}", backbone.name()), |_| false)?)
}
