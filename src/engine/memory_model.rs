//! How much memory GPEN needs for a batch of faces: `bytes(batch) = fixed + per_face × batch`.
//!
//! The line comes from the network's shapes ([`analytic`]) or from measuring two batch sizes on the
//! real device ([`calibrate`]); calibrations are kept per (device, configuration, precision) in a
//! [`CalibrationStore`]. [`DetectionModel`] does the same for the MTCNN face detector.

use crate::device::Precision;
use crate::restore::gpen::Gpen;
use crate::restore::network::GpenConfig;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

const MIB: u64 = 1 << 20;

/// Where a [`MemoryModel`] comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelSource {
    /// Estimated from the network's shapes.
    Analytic,
    /// Measured on `device` at `when` (UTC, "2026-11-25 20:31").
    Calibrated { device: String, when: String },
}

/// Memory of running GPEN on a batch: the weights and workspace (`fixed`) plus the activations of
/// each face (`per_face`), in bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryModel {
    pub fixed: u64,
    pub per_face: u64,
    pub source: ModelSource,
}

impl MemoryModel {
    /// Bytes needed to hold the model and run `batch` faces at once.
    pub fn bytes(&self, batch: usize) -> u64 {
        self.fixed.saturating_add(self.per_face.saturating_mul(batch as u64))
    }
}

/// Bytes of one activation element at `precision`.
fn element_bytes(precision: Precision) -> u64 {
    match precision {
        Precision::Fp32 => 4,
        Precision::Fp16 | Precision::Bf16 => 2,
    }
}

/// The weights: `parameter_count × 4`. They stay fp32 at every precision (the convolutions cast
/// them per layer), so this does not depend on the precision.
pub fn weight_bytes(config: &GpenConfig) -> u64 {
    config.parameter_count().max(0) as u64 * 4
}

/// Allowance for what the forward pass needs once regardless of the batch: per-layer casts of the
/// weights, convolution workspaces (cuDNN, oneDNN), allocator rounding.
pub const WORKSPACE_ALLOWANCE: u64 = 256 * MIB;

/// How many full-resolution activations of the last synthesis layer are alive at once at its peak:
/// the layer's input (`2 × channels(size)` channels: the convolution output concatenated with the
/// encoder feature), the modulated copy of it (batch > 1), the convolution output plus the noise
/// term, and the concatenation/activation output. Four is what the CPU measurement supports (see
/// the test `analytic_estimate_is_safe_and_close_to_the_bfr512_measurement`).
pub const PEAK_ACTIVATIONS: u64 = 4;

/// Activation bytes of one face, from the network's shapes:
/// - the encoder features, all kept alive until the synthesis network consumes them
///   (`channels(r) × r²` at every resolution r from `size` down to 4);
/// - [`PEAK_ACTIVATIONS`] tensors of the widest full-resolution activation (`2 × channels(size) × size²`);
/// - the fp32 input and output images (`2 × 3 × size²` floats);
///
/// times the element size of `precision` (the images always fp32).
pub fn activation_bytes(config: &GpenConfig, precision: Precision) -> u64 {
    let s = config.size;
    let mut features: u64 = 0;
    let mut r = s;
    while r >= 4 {
        features += (config.channels(r) * r * r) as u64;
        r /= 2;
    }
    let widest = (2 * config.channels(s) * s * s) as u64;
    let images = (2 * 3 * s * s) as u64 * 4;
    (features + PEAK_ACTIVATIONS * widest) * element_bytes(precision) + images
}

/// The estimate without measuring: `fixed` = fp32 weights + [`WORKSPACE_ALLOWANCE`], `per_face` =
/// [`activation_bytes`]. Errs on the safe side: for GPEN-BFR-512 fp32 it gives 0.51 GiB + 0.63 GiB
/// per face, where the CPU measured the weights (0.26 GiB) plus 0.59–0.68 GiB per face (see
/// [`calibrate`]); the fixed allowance makes the total safe at every batch size measured.
pub fn analytic(config: &GpenConfig, precision: Precision) -> MemoryModel {
    MemoryModel {
        fixed: weight_bytes(config) + WORKSPACE_ALLOWANCE,
        per_face: activation_bytes(config, precision),
        source: ModelSource::Analytic,
    }
}

/// Why a memory measurement (`calibrate`) failed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// libtorch's CUDA allocator could not be read.
    #[error(transparent)]
    Allocator(#[from] crate::sys::memory::AllocatorError),
    /// The process's resident set could not be read or reset (`/proc`).
    #[error("{0}")]
    Rss(&'static str),
    /// The measuring pass itself failed (a libtorch error).
    #[error("{0}")]
    Pass(String),
    /// The calibrations file could not be written.
    #[error("{0}")]
    Store(String),
}

impl CalibrationError {
    fn pass(e: impl std::fmt::Display) -> Self {
        CalibrationError::Pass(e.to_string())
    }
}

/// The peak memory one forward pass of `batch` random faces adds on `gpen`'s device, in bytes.
///
/// CUDA: the allocator's peak of allocated bytes during the pass minus the bytes allocated before
/// it. CPU: the process's peak resident set (`VmHWM`, reset first) minus its resident set before
/// (after returning freed heap to the system), so memory other threads allocate meanwhile counts too.
pub fn measure_peak(gpen: &Gpen, batch: i64) -> Result<u64, CalibrationError> {
    let s = gpen.config().size;
    let x = Tensor::f_rand([batch, 3, s, s], (Kind::Float, Device::Cpu))
        .and_then(|t| t.f_mul_scalar(2.0)?.f_sub_scalar(1.0))
        .map_err(CalibrationError::pass)?;
    match gpen.device {
        Device::Cuda(i) => {
            let before = crate::sys::memory::allocator_stats(i)?.allocated_current.max(0) as u64;
            crate::sys::memory::reset_peak(i)?;
            let _output = gpen.forward(&x).map_err(|e| CalibrationError::Pass(format!("batch {batch}: {e}")))?;
            let peak = crate::sys::memory::allocator_stats(i)?.allocated_peak.max(0) as u64;
            Ok(peak.saturating_sub(before))
        }
        Device::Cpu => {
            trim_heap();
            let (before, _) = crate::sys::memory::process_rss().ok_or(CalibrationError::Rss("cannot read /proc/self/status"))?;
            if !crate::sys::memory::reset_peak_rss() {
                return Err(CalibrationError::Rss("cannot reset the peak resident set (/proc/self/clear_refs not writable)"));
            }
            let y = gpen.forward(&x).map_err(|e| CalibrationError::Pass(format!("batch {batch}: {e}")))?;
            let (_, peak) = crate::sys::memory::process_rss().ok_or(CalibrationError::Rss("cannot read /proc/self/status"))?;
            drop(y);
            Ok(peak.saturating_sub(before))
        }
        other => Err(CalibrationError::Pass(format!("cannot measure memory on {other:?}"))),
    }
}

/// Gives freed heap back to the kernel so the resident set before a measurement is not inflated by
/// memory the next pass will merely reuse.
fn trim_heap() {
    crate::sys::process::trim_heap();
}

/// Fits a line through measured peaks at batch 1 and 2 (bytes added by the pass, weights excluded).
///
/// `per_face = peak2 − peak1`, but at least half the [`activation_bytes`] estimate: on the CPU the
/// resident set is noisy (the allocator reuses pages, other threads allocate), and a difference
/// below that is noise, not a lighter network. The intercept `peak1 − per_face` is workspace; it
/// is clamped at 0 when noise makes it negative. `fixed` = the weights ([`weight_bytes`], resident
/// before the pass and so not in the peaks) + that intercept.
pub fn fit(config: &GpenConfig, precision: Precision, peak1: u64, peak2: u64, source: ModelSource) -> MemoryModel {
    let floor = activation_bytes(config, precision) / 2;
    let per_face = peak2.saturating_sub(peak1).max(floor);
    let workspace = peak1.saturating_sub(per_face);
    MemoryModel { fixed: weight_bytes(config) + workspace, per_face, source }
}

/// A calibration with the peaks it was fitted from (bytes the forward pass added at batch 1 and 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationRun {
    pub model: MemoryModel,
    pub peak1: u64,
    pub peak2: u64,
}

/// Measures `gpen` on its own device: one warm-up pass (one-time allocations: thread pools, kernel
/// caches), then the peaks of batch 1 and batch 2, fitted by [`fit`].
///
/// Batch 1 takes a leaner path than larger batches (the style is folded into the weights, so no
/// modulated copy of the activations), so the 1→2 slope tends to over-state the per-face cost of
/// larger batches — the safe side. On the CPU the resident set is also noisy: GPEN-BFR-512 fp32 on
/// the dev machine (2 cores) measured 564–647 MiB at batch 1, 1.17–1.32 GiB at batch 2 and
/// 2.36 GiB at batch 4, i.e. a 1→2 slope of 0.62–0.68 GiB against 0.59 GiB from 2→4.
pub fn calibrate(gpen: &Gpen) -> Result<MemoryModel, CalibrationError> {
    calibrate_run(gpen).map(|run| run.model)
}

/// [`calibrate`], also returning the measured peaks.
pub fn calibrate_run(gpen: &Gpen) -> Result<CalibrationRun, CalibrationError> {
    measure_peak(gpen, 1)?; // warm-up
    let peak1 = measure_peak(gpen, 1)?;
    let peak2 = measure_peak(gpen, 2)?;
    let source = ModelSource::Calibrated { device: crate::engine::memory::device_label(gpen.device), when: utc_now() };
    Ok(CalibrationRun { model: fit(&gpen.config(), gpen.precision, peak1, peak2, source), peak1, peak2 })
}

/// The current UTC time as "YYYY-MM-DD HH:MM".
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

// ---------------------------------------------------------------------------------------------
// Persistence

/// A configuration as a short key: `512-cm2-n1`, `256-cm1-n0.5`.
pub fn config_key(config: &GpenConfig) -> String {
    format!("{}-cm{}-n{}", config.size, config.channel_multiplier, config.narrow)
}

/// One stored calibration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationEntry {
    /// The device name as [`MemorySample::device`](crate::engine::memory::MemorySample) gives it.
    pub device: String,
    /// [`config_key`].
    pub config: String,
    /// "fp32", "fp16", "bf16".
    pub precision: String,
    pub fixed: u64,
    pub per_face: u64,
    pub when: String,
}

impl CalibrationEntry {
    pub fn model(&self) -> MemoryModel {
        MemoryModel {
            fixed: self.fixed,
            per_face: self.per_face,
            source: ModelSource::Calibrated { device: self.device.clone(), when: self.when.clone() },
        }
    }
}

/// One stored SR calibration: the upscaler's activations per pixel of input (tile with context).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SrCalibration {
    pub device: String,
    /// [`sr_key`].
    pub config: String,
    pub per_input_pixel: u64,
    pub when: String,
}

/// An SR configuration as a short key: `x2-f32-b23-g32`.
pub fn sr_key(config: &crate::upscale::RrdbConfig) -> String {
    format!("x{}-f{}-b{}-g{}", config.scale, config.num_feat, config.num_block, config.num_grow_ch)
}

/// Measures the SR network's activations per input pixel on its device: the peak added by a pass
/// over a `a` x `a` and a `b` x `b` input, the slope between them (so weights and workspace cancel).
/// The analytic figure is the floor, as for faces: on the CPU a freed buffer may be reused.
pub fn calibrate_sr(up: &crate::upscale::Upscaler) -> Result<(u64, u64, u64), CalibrationError> {
    let peak = |side: i64| -> Result<u64, CalibrationError> {
        let x = Tensor::f_rand([1, 3, side, side], (Kind::Float, Device::Cpu)).map_err(CalibrationError::pass)?;
        match up.device() {
            Device::Cuda(i) => {
                let before = crate::sys::memory::allocator_stats(i)?.allocated_current.max(0) as u64;
                crate::sys::memory::reset_peak(i)?;
                let _y = up.forward_raw(&x).map_err(CalibrationError::pass)?;
                Ok((crate::sys::memory::allocator_stats(i)?.allocated_peak.max(0) as u64).saturating_sub(before))
            }
            _ => {
                trim_heap();
                let (before, _) = crate::sys::memory::process_rss().ok_or(CalibrationError::Rss("cannot read /proc/self/status"))?;
                if !crate::sys::memory::reset_peak_rss() {
                    return Err(CalibrationError::Rss("cannot reset the peak resident set (/proc/self/clear_refs not writable)"));
                }
                let y = up.forward_raw(&x).map_err(CalibrationError::pass)?;
                let (_, peak) = crate::sys::memory::process_rss().ok_or(CalibrationError::Rss("cannot read /proc/self/status"))?;
                drop(y);
                Ok(peak.saturating_sub(before))
            }
        }
    };
    let (a, b) = (96i64, 192i64);
    peak(a)?; // warm-up
    let (pa, pb) = (peak(a)?, peak(b)?);
    let slope = pb.saturating_sub(pa) / (b * b - a * a) as u64;
    let floor = crate::upscale::bytes_per_input_pixel(&up.config()) / 2;
    Ok((slope.max(floor), pa, pb))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoreFile {
    version: u32,
    calibrations: Vec<CalibrationEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sr: Vec<SrCalibration>,
}

/// Calibrations on disk (`calibrations.json` in the configuration directory), one per
/// (device, configuration, precision).
#[derive(Debug, Clone)]
pub struct CalibrationStore {
    path: PathBuf,
    entries: Vec<CalibrationEntry>,
    sr: Vec<SrCalibration>,
    warning: Option<String>,
}

impl CalibrationStore {
    /// `config_dir()/calibrations.json`.
    pub fn default_path() -> PathBuf {
        crate::paths::config_dir().join("calibrations.json")
    }

    /// Reads the store at `path`. A missing file is an empty store; an unreadable or corrupt one is
    /// too, with a warning (printed to stderr and kept in [`warning`](Self::warning)) — losing
    /// calibrations only costs a re-measurement, so it is never fatal.
    pub fn load(path: &Path) -> CalibrationStore {
        let mut store = CalibrationStore { path: path.to_path_buf(), entries: Vec::new(), sr: Vec::new(), warning: None };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return store,
            Err(e) => {
                store.warn(format!("cannot read {}: {e}", path.display()));
                return store;
            }
        };
        match serde_json::from_str::<StoreFile>(&text) {
            Ok(file) => {
                store.entries = file.calibrations;
                store.sr = file.sr;
            }
            Err(e) => store.warn(format!("ignoring corrupt calibration file {}: {e}", path.display())),
        }
        store
    }

    fn warn(&mut self, message: String) {
        eprintln!("warning: {message}");
        self.warning = Some(message);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file was ignored, if it was.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    pub fn entries(&self) -> &[CalibrationEntry] {
        &self.entries
    }

    pub fn get(&self, device: &str, config: &GpenConfig, precision: Precision) -> Option<MemoryModel> {
        let (key, precision) = (config_key(config), precision.to_string());
        self.entries.iter().find(|e| e.device == device && e.config == key && e.precision == precision).map(|e| e.model())
    }

    /// Adds or replaces the calibration of (device, config, precision). `when` comes from the
    /// model's source when it is calibrated, else is now.
    pub fn insert(&mut self, device: &str, config: &GpenConfig, precision: Precision, model: &MemoryModel) {
        let when = match &model.source {
            ModelSource::Calibrated { when, .. } => when.clone(),
            ModelSource::Analytic => utc_now(),
        };
        let entry = CalibrationEntry {
            device: device.to_string(),
            config: config_key(config),
            precision: precision.to_string(),
            fixed: model.fixed,
            per_face: model.per_face,
            when,
        };
        match self.entries.iter_mut().find(|e| e.device == entry.device && e.config == entry.config && e.precision == entry.precision) {
            Some(old) => *old = entry,
            None => self.entries.push(entry),
        }
    }

    pub fn sr_entries(&self) -> &[SrCalibration] {
        &self.sr
    }

    /// The calibrated SR activations per input pixel of `config` on `device`.
    pub fn get_sr(&self, device: &str, config: &crate::upscale::RrdbConfig) -> Option<u64> {
        let key = sr_key(config);
        self.sr.iter().find(|e| e.device == device && e.config == key).map(|e| e.per_input_pixel)
    }

    pub fn insert_sr(&mut self, device: &str, config: &crate::upscale::RrdbConfig, per_input_pixel: u64) {
        let entry = SrCalibration { device: device.into(), config: sr_key(config), per_input_pixel, when: utc_now() };
        match self.sr.iter_mut().find(|e| e.device == entry.device && e.config == entry.config) {
            Some(old) => *old = entry,
            None => self.sr.push(entry),
        }
    }

    /// Writes the store atomically, creating the directory.
    pub fn save(&self) -> Result<(), CalibrationError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| CalibrationError::Store(format!("creating {}: {e}", dir.display())))?;
        }
        let file = StoreFile { version: 1, calibrations: self.entries.clone(), sr: self.sr.clone() };
        let text = serde_json::to_string_pretty(&file).map_err(|e| CalibrationError::Store(e.to_string()))?;
        crate::paths::write_atomically(&self.path, |tmp| std::fs::write(tmp, &text))
            .map_err(|e| CalibrationError::Store(format!("writing {}: {e}", self.path.display())))
    }
}

// ---------------------------------------------------------------------------------------------
// Detection

/// Memory of face detection on one photo: `fixed + per_megapixel × megapixels` bytes, where the
/// megapixels are what the network sees (RetinaFace shrinks large photos first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionModel {
    pub fixed: u64,
    pub per_megapixel: u64,
    /// RetinaFace's input rule (`detect()`: a photo whose longer side exceeds 1500 px is resized to
    /// 1000): photos above this many megapixels are searched at no more than 1 MP. `None`: the
    /// whole photo is searched (MTCNN's pyramid starts at full size).
    pub shrinks_above_megapixels: Option<f64>,
}

impl Default for DetectionModel {
    /// The analytic estimate for MTCNN with `min_face_size ≥ 12` (first pyramid scale ≤ 1), per
    /// pixel of the photo:
    /// - the decoded photo (3 bytes) and its planar fp32 copy (12 bytes);
    /// - per pixel of a pyramid level, the resized level (3 floats) and its tensor copy (3), P-Net's
    ///   conv1 and PReLU outputs (10 + 10), the 2×2 max-pool (2.5), conv2 + PReLU (4 + 4 at the
    ///   pooled resolution), conv3 + PReLU (8 + 8), the heads (1.5): 54 floats = 216 bytes; levels
    ///   run one at a time, but the sum over the pyramid (`Σ 0.709^2k ≈ 2.02` at scale 1) is taken
    ///   to stay safe, ≈ 437 bytes;
    ///
    /// ≈ 452 bytes per pixel. `fixed` covers the three networks' weights (< 2 MiB), the R-Net and
    /// O-Net crop batches and libtorch's workspace: 64 MiB.
    fn default() -> Self {
        let level_bytes: f64 = 54.0 * 4.0;
        let pyramid = 1.0 / (1.0 - 0.709f64 * 0.709);
        let per_pixel = 15.0 + level_bytes * pyramid;
        DetectionModel { fixed: 64 * MIB, per_megapixel: (per_pixel * 1e6).ceil() as u64, shrinks_above_megapixels: None }
    }
}

impl DetectionModel {
    /// RetinaFace with `backbone`: its activations per pixel of the network input
    /// ([`crate::detect::retinaface::detection_bytes_per_pixel`]) plus the photo's float BGR copy
    /// (12 bytes a pixel, counted on the 1 MP the network sees at most — the copy of a larger photo
    /// is freed once it is shrunk); `fixed` holds its weights (fp32) and libtorch's workspace.
    pub fn retinaface(backbone: crate::detect::retinaface::Backbone, weight_bytes: u64) -> Self {
        let per_pixel = crate::detect::retinaface::detection_bytes_per_pixel(backbone) + 12;
        DetectionModel {
            fixed: weight_bytes + 64 * MIB,
            per_megapixel: per_pixel * 1_000_000,
            // 1500 x 1500: any photo with more pixels has a side over 1500 px.
            shrinks_above_megapixels: Some(2.25),
        }
    }

    /// The model of the detector `config` runs with (RetinaFace's backbone and weights read from
    /// the file's shapes, nothing loaded); MTCNN's when it cannot tell.
    pub fn for_config(config: &crate::config::ResolvedRun) -> Self {
        let crate::config::DetectorUse::RetinaFace(path) = &config.detector else { return DetectionModel::default() };
        let Ok(shapes) = crate::checkpoint::read_shapes(path) else { return DetectionModel::default() };
        let Some(backbone) = crate::detect::retinaface::Backbone::infer(&shapes) else { return DetectionModel::default() };
        let weights = crate::checkpoint::fp32_bytes(&shapes);
        DetectionModel::retinaface(backbone, weights)
    }

    /// What searching a photo of `megapixels` takes beyond the resident weights (charged per photo).
    pub fn per_photo_bytes(&self, megapixels: f64) -> u64 {
        self.bytes(megapixels).saturating_sub(self.fixed)
    }

    pub fn bytes(&self, megapixels: f64) -> u64 {
        let searched = match self.shrinks_above_megapixels {
            Some(limit) if megapixels > limit => 1.0,
            _ => megapixels.max(0.0),
        };
        self.fixed.saturating_add((self.per_megapixel as f64 * searched).ceil() as u64)
    }

    /// Whether detecting on a photo of `megapixels` fits in `free × ratio`.
    pub fn fits(&self, megapixels: f64, free: u64, ratio: f64) -> bool {
        self.bytes(megapixels) as f64 <= free as f64 * ratio.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = (1u64 << 30) as f64;

    #[test]
    fn analytic_estimate_is_safe_and_close_to_the_bfr512_measurement() {
        // `bench generator --config bfr-512 --random-weights --batch 1,2,4 --device cpu` on the dev
        // machine: peak growth over the resident set (weights already loaded) 585, 1190, 2373 MiB.
        let model = analytic(&GpenConfig::BFR_512, Precision::Fp32);
        let weights = weight_bytes(&GpenConfig::BFR_512);
        for (batch, growth_mib) in [(1usize, 585u64), (2, 1190), (4, 2373)] {
            let real = weights + growth_mib * MIB;
            let est = model.bytes(batch);
            assert!(est >= real, "batch {batch}: estimate {est} below the measured {real}");
            assert!(est <= 2 * real, "batch {batch}: estimate {est} more than twice the measured {real}");
        }
        let per_face = model.per_face as f64 / GIB;
        assert!((0.58..0.8).contains(&per_face), "per face {per_face:.3} GiB");
        // Half precision halves the activations, not the weights.
        let half = analytic(&GpenConfig::BFR_512, Precision::Fp16);
        assert_eq!(half.fixed, model.fixed);
        assert!(half.per_face < model.per_face * 6 / 10);
    }

    #[test]
    fn fit_takes_the_slope_and_guards_against_noise() {
        let c = GpenConfig::BFR_512;
        let act = activation_bytes(&c, Precision::Fp32);
        let m = fit(&c, Precision::Fp32, 700 * MIB, 1300 * MIB, ModelSource::Analytic);
        assert_eq!(m.per_face, 600 * MIB);
        assert_eq!(m.fixed, weight_bytes(&c) + 100 * MIB);
        // Peak 2 below peak 1 (noise): the floor, and no negative workspace.
        let m = fit(&c, Precision::Fp32, 700 * MIB, 650 * MIB, ModelSource::Analytic);
        assert_eq!(m.per_face, act / 2);
        assert_eq!(m.fixed, weight_bytes(&c) + 700 * MIB - act / 2);
        let m = fit(&c, Precision::Fp32, 10 * MIB, 2000 * MIB, ModelSource::Analytic);
        assert_eq!(m.fixed, weight_bytes(&c));
    }

    #[test]
    fn config_keys_are_short() {
        assert_eq!(config_key(&GpenConfig::BFR_512), "512-cm2-n1");
        assert_eq!(config_key(&GpenConfig::BFR_256), "256-cm1-n0.5");
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00");
        assert_eq!(format_utc(951_827_696), "2000-02-29 12:34");
        // Any instant, against a count of whole days year by year and month by month.
        for secs in [1_795_000_000u64, 4_102_444_800, 1_709_164_799, 1_234_567_890, 86_399] {
            assert_eq!(format_utc(secs), utc_by_counting(secs), "{secs}");
        }
    }

    /// `YYYY-MM-DD HH:MM` of `secs` after 1970 by walking the calendar: independent of the
    /// closed-form `civil_from_days` that `format_utc` uses.
    fn utc_by_counting(secs: u64) -> String {
        let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let (mut days, rem) = (secs / 86_400, secs % 86_400);
        let mut year = 1970;
        while days >= if leap(year) { 366 } else { 365 } {
            days -= if leap(year) { 366 } else { 365 };
            year += 1;
        }
        let lengths = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let mut month = 0;
        while days >= lengths[month] {
            days -= lengths[month];
            month += 1;
        }
        format!("{year:04}-{:02}-{:02} {:02}:{:02}", month + 1, days + 1, rem / 3600, rem % 3600 / 60)
    }

    #[test]
    fn detection_estimate() {
        let d = DetectionModel::default();
        let per_pixel = d.per_megapixel as f64 / 1e6;
        // The doc's sum, level by level: 15 bytes for the photo and its float copy, 216 per pixel
        // of each pyramid level, levels shrinking by 0.709 a side.
        let by_levels: f64 = 15.0 + (0..200).map(|k| 216.0 * 0.709f64.powi(2 * k)).sum::<f64>();
        assert!((per_pixel - by_levels).abs() < 1e-3, "{per_pixel} vs {by_levels}");
        // A 12 MP photo needs about 5.3 GiB + 64 MiB.
        assert!(d.fits(12.0, 8 << 30, 0.8));
        assert!(!d.fits(12.0, 4 << 30, 0.8));
        assert!(d.fits(0.0, 64 << 20, 1.0));
        assert!(!d.fits(0.0, 64 << 20, 0.5));
        // RetinaFace searches large photos at 1 MP: a 24 MP scan costs what a 1 MP photo costs.
        let r = DetectionModel::retinaface(crate::detect::retinaface::Backbone::ResNet50, 109 << 20);
        assert_eq!(r.bytes(24.0), r.bytes(1.0));
        assert!(r.bytes(2.0) > r.bytes(1.0));
        assert_eq!(r.bytes(1.0), (109 << 20) + (64 << 20) + 306 * 1_000_000);
    }
}
