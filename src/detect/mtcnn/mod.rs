//! MTCNN as facenet-pytorch 2.6.0 runs it (`MTCNN(keep_all=True).detect(img, landmarks=True)`):
//! an image pyramid through P-Net, the candidates' crops through R-Net and then O-Net, with NMS and
//! box regression between the stages (mtcnn.md §3). Weights are facenet-pytorch's `pnet.pt`,
//! `rnet.pt` and `onet.pt`, loaded under their own key names.

mod boxes;
mod layers;
mod onet;
mod pnet;
mod resample;
mod rnet;

pub use onet::{ONet, ONetOutput};
pub use pnet::PNet;
pub use rnet::RNet;

use super::{DetectError, DetectOptions, Face, FaceDetector};
use crate::checkpoint::{self, CheckpointError};
use boxes::BBox;
use image::RgbImage;
use resample::Planar;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// R-Net and O-Net run in batches of at most this many crops (the reference's chunk size).
const CHUNK: usize = 512;

/// The files that make a usable MTCNN folder.
pub const WEIGHT_FILES: [&str; 3] = ["pnet.pt", "rnet.pt", "onet.pt"];

/// Where the MTCNN weights are looked for: `$GPEN_MTCNN_DIR` when set, else the first of
/// [`models_dir_candidates`] that holds all three files. When none does, the folder the error
/// message should name: the repository's `models/mtcnn` in a build tree (`make` fills it), else the
/// user's data directory.
pub fn default_models_dir() -> PathBuf {
    let (dirs, from_env) = search_path();
    if from_env {
        return dirs.into_iter().next().expect("the variable's folder");
    }
    if let Some(found) = dirs.into_iter().find(|d| has_weights(d)) {
        return found;
    }
    let repo = build_tree_models_dir();
    if repo.parent().is_some_and(Path::is_dir) { repo } else { crate::paths::data_dir().join("mtcnn") }
}

/// The folders [`default_models_dir`] looks in, in order, and whether they are `$GPEN_MTCNN_DIR`
/// alone (which, when set, is the only one).
pub fn search_path() -> (Vec<PathBuf>, bool) {
    if let Some(dir) = std::env::var_os("GPEN_MTCNN_DIR").filter(|v| !v.is_empty()) {
        return (vec![PathBuf::from(dir)], true);
    }
    let exe = std::env::current_exe().ok();
    (models_dir_candidates(exe.as_deref(), &crate::paths::data_dir()), false)
}

/// The folders tried, in order: the one an installed package puts beside its binary
/// (`<prefix>/bin/gpen-studio` → `<prefix>/share/gpen-studio/mtcnn`, as the .deb lays it out), the
/// repository the binary was built from, and `<data dir>/mtcnn` for weights a user placed by hand.
pub fn models_dir_candidates(exe: Option<&Path>, data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(prefix) = exe.and_then(Path::parent).and_then(Path::parent) {
        dirs.push(prefix.join("share").join("gpen-studio").join("mtcnn"));
    }
    dirs.push(build_tree_models_dir());
    dirs.push(data_dir.join("mtcnn"));
    dirs
}

/// Whether `dir` holds all of [`WEIGHT_FILES`].
pub fn has_weights(dir: &Path) -> bool {
    WEIGHT_FILES.iter().all(|f| dir.join(f).is_file())
}

fn build_tree_models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join("mtcnn")
}

/// The three networks with their weights, on one device.
#[derive(Debug)]
pub struct Mtcnn {
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    // The networks' tensors live in these stores.
    _stores: [nn::VarStore; 3],
    device: Device,
    options: DetectOptions,
}

impl Mtcnn {
    /// Loads `pnet.pt`, `rnet.pt` and `onet.pt` from `models_dir`, checking every key and shape.
    pub fn load(models_dir: &Path, device: Device) -> Result<Self, DetectError> {
        let mut pnet_vs = nn::VarStore::new(device);
        let pnet = PNet::new(&pnet_vs.root());
        load_weights(&mut pnet_vs, &models_dir.join("pnet.pt"), "MTCNN P-Net")?;
        let mut rnet_vs = nn::VarStore::new(device);
        let rnet = RNet::new(&rnet_vs.root());
        load_weights(&mut rnet_vs, &models_dir.join("rnet.pt"), "MTCNN R-Net")?;
        let mut onet_vs = nn::VarStore::new(device);
        let onet = ONet::new(&onet_vs.root());
        load_weights(&mut onet_vs, &models_dir.join("onet.pt"), "MTCNN O-Net")?;
        Ok(Mtcnn { pnet, rnet, onet, _stores: [pnet_vs, rnet_vs, onet_vs], device, options: DetectOptions::default() })
    }

    /// Replaces the detection settings (validated here, so `detect` cannot loop forever).
    pub fn with_options(mut self, options: DetectOptions) -> Result<Self, DetectError> {
        options.validate()?;
        self.options = options;
        Ok(self)
    }

    pub fn options(&self) -> &DetectOptions {
        &self.options
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn pnet(&self) -> &PNet {
        &self.pnet
    }

    pub fn rnet(&self) -> &RNet {
        &self.rnet
    }

    pub fn onet(&self) -> &ONet {
        &self.onet
    }

    fn run(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError> {
        let (width, height) = image.dimensions();
        let img = Planar::from_rgb(image);
        let [t1, t2, t3] = self.options.thresholds;

        // Stage 1: P-Net over the pyramid, NMS per scale, then across scales (which in practice
        // only re-sorts by score, but that order decides every later tie).
        let mut cands: Vec<(BBox, f32, [f32; 4])> = Vec::new();
        for scale in pyramid(width, height, &self.options) {
            let hs = (height as f64 * scale + 1.0) as usize;
            let ws = (width as f64 * scale + 1.0) as usize;
            let mut level = Vec::new();
            resample::area_resize_into(&img, (0, img.height, 0, img.width), hs, ws, &mut level);
            let (reg, prob) = self.pnet.forward(&self.to_batch(&level, 1, hs, ws)?)?;
            let level_cands = cells(&prob, &reg, scale as f32, t1)?;
            let (b, s): (Vec<BBox>, Vec<f32>) = level_cands.iter().map(|c| (c.0, c.1)).unzip();
            cands.extend(boxes::nms(&b, &s, 0.5).into_iter().map(|i| level_cands[i]));
        }
        let (b, s): (Vec<BBox>, Vec<f32>) = cands.iter().map(|c| (c.0, c.1)).unzip();
        let stage1: Vec<BBox> =
            boxes::nms(&b, &s, 0.7).into_iter().map(|i| boxes::square(&boxes::regress_pnet(&cands[i].0, &cands[i].2))).collect();

        // Stage 2: R-Net on 24x24 crops.
        let (stage1, batch) = self.crops(&img, stage1, 24)?;
        let mut passed: Vec<(BBox, f32, [f32; 4])> = Vec::new();
        for (start, len) in chunks(stage1.len()) {
            let (reg, prob) = self.rnet.forward(&batch.f_narrow(0, start as i64, len as i64)?)?;
            let (reg, score) = (rows::<4>(&reg)?, column(&prob, 1)?);
            for k in 0..len {
                if score[k] > t2 {
                    passed.push((stage1[start + k], score[k], reg[k]));
                }
            }
        }
        let (b, s): (Vec<BBox>, Vec<f32>) = passed.iter().map(|c| (c.0, c.1)).unzip();
        let stage2: Vec<BBox> =
            boxes::nms(&b, &s, 0.7).into_iter().map(|i| boxes::square(&boxes::regress(&passed[i].0, &passed[i].2))).collect();

        // Stage 3: O-Net on 48x48 crops; landmarks are relative to the O-Net input box.
        let (stage2, batch) = self.crops(&img, stage2, 48)?;
        let mut faces: Vec<Face> = Vec::new();
        for (start, len) in chunks(stage2.len()) {
            let out = self.onet.forward(&batch.f_narrow(0, start as i64, len as i64)?)?;
            let (reg, lm, score) = (rows::<4>(&out.reg)?, rows::<10>(&out.landmarks)?, column(&out.prob, 1)?);
            for k in 0..len {
                if score[k] > t3 {
                    let b = stage2[start + k];
                    let (w, h) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
                    let landmarks = std::array::from_fn(|p| [w * lm[k][p] + b[0] - 1.0, h * lm[k][5 + p] + b[1] - 1.0]);
                    faces.push(Face { bbox: boxes::regress(&b, &reg[k]), score: score[k], landmarks });
                }
            }
        }
        let (b, s): (Vec<BBox>, Vec<f32>) = faces.iter().map(|f| (f.bbox, f.score)).unzip();
        let mut faces: Vec<Face> = boxes::nms_min(&b, &s, 0.7).into_iter().map(|i| faces[i]).collect();
        // Largest first, as numpy's `argsort(area)[::-1]`.
        faces.sort_by(|a, b| (a.width() * a.height()).total_cmp(&(b.width() * b.height())));
        faces.reverse();
        Ok(faces)
    }

    /// Crops every box (see [`boxes::crop_window`]), resamples to `size` x `size` and stacks the
    /// crops into one normalised batch. Boxes wholly outside the image are dropped.
    fn crops(&self, img: &Planar, list: Vec<BBox>, size: usize) -> Result<(Vec<BBox>, Tensor), DetectError> {
        let mut kept = Vec::with_capacity(list.len());
        let mut data = Vec::with_capacity(list.len() * size * size * 3);
        for b in list {
            if let Some(win) = boxes::crop_window(&b, img.width as u32, img.height as u32) {
                resample::area_resize_into(img, win, size, size, &mut data);
                kept.push(b);
            }
        }
        let batch = self.to_batch(&data, kept.len(), size, size)?;
        Ok((kept, batch))
    }

    /// HWC data -> an NCHW tensor on the device with channels-last strides, the layout the
    /// reference's convolutions see (it decides the last bits of their output).
    fn to_batch(&self, data: &[f32], n: usize, h: usize, w: usize) -> Result<Tensor, DetectError> {
        Ok(Tensor::f_from_slice(data)?.f_view([n as i64, h as i64, w as i64, 3])?.f_permute([0, 3, 1, 2])?.f_to_device(self.device)?)
    }
}

impl FaceDetector for Mtcnn {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError> {
        tch::no_grad(|| self.run(image))
    }
}

/// The pyramid scales (f64, by repeated multiplication as the reference does; `powf` can differ in
/// the last bit). Empty when the image's shorter side is below `min_face_size`.
pub fn pyramid(width: u32, height: u32, options: &DetectOptions) -> Vec<f64> {
    let m = 12.0 / options.min_face_size;
    let mut minl = width.min(height) as f64 * m;
    let mut scale = m;
    let mut scales = Vec::new();
    // The factor check guards against an endless loop for unvalidated options.
    while minl >= 12.0 && options.factor > 0.0 && options.factor < 1.0 {
        scales.push(scale);
        scale *= options.factor;
        minl *= options.factor;
    }
    scales
}

/// P-Net cells with P(face) >= `threshold`, in row-major order: (window, score, regression).
fn cells(prob: &Tensor, reg: &Tensor, scale: f32, threshold: f32) -> Result<Vec<(BBox, f32, [f32; 4])>, DetectError> {
    let (_, _, rows, cols) = prob.size4()?;
    let (rows, cols) = (rows as usize, cols as usize);
    let p = to_vec(&prob.f_select(0, 0)?.f_select(0, 1)?)?;
    let r = to_vec(&reg.f_select(0, 0)?)?;
    let plane = rows * cols;
    let mut out = Vec::new();
    for (i, &score) in p.iter().enumerate() {
        if score >= threshold {
            let offsets = std::array::from_fn(|k| r[k * plane + i]);
            out.push((boxes::cell_box(i / cols, i % cols, scale), score, offsets));
        }
    }
    Ok(out)
}

/// `(start, len)` of the network batches for `n` crops.
fn chunks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(CHUNK).map(move |s| (s, CHUNK.min(n - s)))
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, DetectError> {
    let t = t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.f_view([-1])?;
    Ok(Vec::<f32>::try_from(&t)?)
}

/// An [N, K] tensor as N rows.
fn rows<const K: usize>(t: &Tensor) -> Result<Vec<[f32; K]>, DetectError> {
    let flat = to_vec(t)?;
    Ok(flat.chunks_exact(K).map(|c| c.try_into().expect("chunk of K")).collect())
}

/// Column `c` of an [N, K] tensor.
fn column(t: &Tensor, c: i64) -> Result<Vec<f32>, DetectError> {
    to_vec(&t.f_select(1, c)?)
}

/// Copies a facenet-pytorch state dict into `vs` after a strict key and shape check.
fn load_weights(vs: &mut nn::VarStore, path: &Path, what: &str) -> Result<(), DetectError> {
    if !path.is_file() {
        return Err(CheckpointError::unreadable(
            path,
            "MTCNN weights not found; put facenet-pytorch's pnet.pt, rnet.pt and onet.pt in that folder \
             or point GPEN_MTCNN_DIR at them",
        )
        .into());
    }
    let found: BTreeMap<String, Tensor> = checkpoint::read_tensors(path)?.into_iter().collect();
    Ok(checkpoint::load_strict(vs, &found, path, what, |_| false)?)
}

#[cfg(test)]
mod tests;
