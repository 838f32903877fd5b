//! Work the window hands to helper threads so that drawing never waits: thumbnails (decoding full
//! photos), the detection preview (MTCNN on the CPU, before any model is loaded), reading a model
//! file's configuration, file dialogs and model downloads. Results come back on one channel drained
//! every frame.

use crate::detect::{Face, FaceDetector};
use crate::engine::worker::{Preview, preview};
use crate::gui::download::DownloadOutcome;
use crate::photo::{ReadLimits, read_photo};
use crate::weights::{DownloadOptions, ModelEntry, ModelError, ModelStore, Progress};
use crossbeam_channel::{Receiver, Sender};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest side of the queue's thumbnails.
pub const THUMBNAIL_SIDE: u32 = 64;
/// Longest side of the detection preview (the same as the engine's previews).
pub const PREVIEW_SIDE: u32 = 1024;
/// A download reports its progress at most this often (each report costs a frame).
pub const DOWNLOAD_REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// What a file dialog was opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogPurpose {
    Photos,
    Folder,
    Weights,
    OutputDir,
    /// The compare view's model B.
    CompareWeights,
}

#[derive(Debug)]
pub enum HelperResult {
    Thumbnail {
        key: u64,
        image: Option<image::RgbImage>,
    },
    Detected {
        key: u64,
        result: Result<(Vec<Face>, Preview), String>,
    },
    /// The model file's description and configuration (from its tensor shapes).
    ModelInfo {
        path: PathBuf,
        result: Result<(String, crate::restore::network::GpenConfig), String>,
    },
    Picked {
        purpose: DialogPurpose,
        paths: Vec<PathBuf>,
    },
    /// The photos a drop or a picked folder named, walked (each with its output key, as the
    /// command line names results): (photo, canonical path) in order.
    Collected(Vec<(crate::archive::Photo, PathBuf)>),
    /// Bytes of the model download so far, and its size when the server said it.
    DownloadProgress {
        bytes: u64,
        total: Option<u64>,
    },
    DownloadFinished(DownloadOutcome),
    /// A face aligned for the face tool.
    FaceCrop {
        key: u64,
        face: usize,
        result: Result<image::RgbImage, super::face_job::FaceToolError>,
    },
    /// What the live plan needs from files, for the settings `key` names.
    PlanInputs {
        key: String,
        inputs: super::live_plan::PlanInputs,
    },
    /// The face tool's result: its file and pixels.
    FaceResult {
        key: u64,
        face: usize,
        result: Result<(PathBuf, image::RgbImage), super::face_job::FaceToolError>,
    },
    /// A photo restored by the compare view's model B.
    CompareResult {
        key: u64,
        result: Result<super::compare_job::CompareResult, super::face_job::FaceToolError>,
    },
}

enum DetectJob {
    /// With the settings the preview must detect with (the run's detector, so the faces a user
    /// switches off are the faces the run would restore).
    Detect {
        key: u64,
        path: PathBuf,
        config: Box<crate::config::RunConfig>,
    },
    ModelInfo(PathBuf),
}

pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The helper threads and the channel their results come back on.
pub struct Helpers {
    results_tx: Sender<HelperResult>,
    pub results: Receiver<HelperResult>,
    thumbs: Sender<(u64, PathBuf)>,
    detect: Sender<DetectJob>,
    walks: Sender<(Vec<PathBuf>, bool, PathBuf)>,
    plans: Sender<super::live_plan::PlanJob>,
    detection_enabled: bool,
    wake: Wake,
    pub dialog_open: bool,
}

impl Helpers {
    /// `detection`: run MTCNN for the preview (off in tests that need no detector).
    pub fn start(wake: Wake, detection: bool) -> Self {
        let (results_tx, results) = crossbeam_channel::unbounded();
        let (thumbs, thumb_jobs) = crossbeam_channel::unbounded::<(u64, PathBuf)>();
        let (detect, detect_jobs) = crossbeam_channel::unbounded::<DetectJob>();
        let (walks, walk_jobs) = crossbeam_channel::unbounded::<(Vec<PathBuf>, bool, PathBuf)>();
        let (plans, plan_jobs) = crossbeam_channel::unbounded::<super::live_plan::PlanJob>();
        {
            // The live plan's inputs read files (the calibration store, checkpoint shapes): never
            // on the window's thread. Only the newest request counts.
            let tx = results_tx.clone();
            let wake = wake.clone();
            std::thread::Builder::new()
                .name("gui-plan".into())
                .spawn(move || {
                    while let Ok(job) = plan_jobs.recv() {
                        let job = plan_jobs.try_iter().last().unwrap_or(job);
                        if tx.send(HelperResult::PlanInputs { key: job.key.clone(), inputs: job.inputs() }).is_err() {
                            return;
                        }
                        wake();
                    }
                })
                .expect("spawn the plan thread");
        }
        {
            // Walking a dropped folder (and resolving every path) can take seconds on a slow disk
            // or a network share; one thread keeps the drops in the order they were made.
            let tx = results_tx.clone();
            let wake = wake.clone();
            std::thread::Builder::new()
                .name("gui-walk".into())
                .spawn(move || {
                    for (paths, recursive, out_dir) in walk_jobs {
                        // The output folder is never taken as input (a drop of the folder that holds it).
                        let found = crate::archive::inputs::find_photos(&paths, recursive, Some(&out_dir))
                            .photos
                            .into_iter()
                            .map(|p| {
                                let canonical = p.path.canonicalize().unwrap_or_else(|_| p.path.clone());
                                (p, canonical)
                            })
                            .collect();
                        if tx.send(HelperResult::Collected(found)).is_err() {
                            return;
                        }
                        wake();
                    }
                })
                .expect("spawn the folder-walk thread");
        }
        {
            let tx = results_tx.clone();
            let wake = wake.clone();
            std::thread::Builder::new()
                .name("gui-thumbnails".into())
                .spawn(move || {
                    for (key, path) in thumb_jobs {
                        let image = read_photo(&path, &ReadLimits::default())
                            .ok()
                            .and_then(|p| preview(&p.pixels, THUMBNAIL_SIDE))
                            .map(|p| p.image);
                        if tx.send(HelperResult::Thumbnail { key, image }).is_err() {
                            return;
                        }
                        wake();
                    }
                })
                .expect("spawn the thumbnail thread");
        }
        {
            let tx = results_tx.clone();
            let wake = wake.clone();
            std::thread::Builder::new()
                .name("gui-detect".into())
                .spawn(move || {
                    // The detector, kept while the settings it was built for stay the same.
                    type Built = Result<Box<dyn FaceDetector + Send>, crate::error::SetupError>;
                    let mut detector: Option<(DetectorKey, Built)> = None;
                    for job in detect_jobs {
                        let result = match job {
                            DetectJob::Detect { key, path, config } => {
                                let wanted = detector_key(&config);
                                if detector.as_ref().is_none_or(|(k, _)| *k != wanted) {
                                    let built = config
                                        .resolve()
                                        .map_err(crate::error::SetupError::from)
                                        .and_then(|r| r.load_detector(tch::Device::Cpu));
                                    detector = Some((wanted, built));
                                }
                                let result = match &detector.as_ref().expect("built above").1 {
                                    Ok(det) => detect_preview(det.as_ref(), &path).map_err(|e| e.to_string()),
                                    Err(e) => Err(format!("face detector unavailable: {e}")),
                                };
                                HelperResult::Detected { key, result }
                            }
                            DetectJob::ModelInfo(path) => {
                                let result = model_info(&path).map_err(|e| e.to_string());
                                HelperResult::ModelInfo { path, result }
                            }
                        };
                        if tx.send(result).is_err() {
                            return;
                        }
                        wake();
                    }
                })
                .expect("spawn the detection thread");
        }
        Helpers { results_tx, results, thumbs, detect, walks, plans, detection_enabled: detection, wake, dialog_open: false }
    }

    /// Walks files and folders for photos off the UI thread (answered by `Collected`), skipping
    /// the output folder `out_dir`.
    pub fn collect(&self, paths: Vec<PathBuf>, recursive: bool, out_dir: PathBuf) {
        let _ = self.walks.send((paths, recursive, out_dir));
    }

    /// Makes the live plan's inputs off the window's thread (answered by `PlanInputs`).
    pub fn plan_inputs(&self, job: super::live_plan::PlanJob) {
        let _ = self.plans.send(job);
    }

    pub fn thumbnail(&self, key: u64, path: PathBuf) {
        let _ = self.thumbs.send((key, path));
    }

    /// Asks for the detection preview with the detector `config` names; false when detection is off.
    pub fn detect(&self, key: u64, path: PathBuf, config: &crate::config::RunConfig) -> bool {
        self.detection_enabled && self.detect.send(DetectJob::Detect { key, path, config: Box::new(config.clone()) }).is_ok()
    }

    pub fn model_info(&self, path: PathBuf) {
        let _ = self.detect.send(DetectJob::ModelInfo(path));
    }

    /// Aligns face `face_index` of `photo` for the face tool, at the size of `weights`' model.
    pub fn face_crop(&self, key: u64, face_index: usize, photo: PathBuf, face: Face, weights: PathBuf) -> std::io::Result<()> {
        self.on_thread("gui-face-crop", move || HelperResult::FaceCrop {
            key,
            face: face_index,
            result: super::face_job::align_crop(&photo, &face, &weights),
        })
    }

    /// Runs the face tool's job (an engine run of its own, for one aligned face).
    /// Runs a face tool's job on the engine behind `engine` (the window's), from a helper thread.
    pub fn face_job(&self, key: u64, job: super::face_job::FaceJob, engine: Sender<crate::engine::worker::Command>) -> std::io::Result<()> {
        self.on_thread("gui-face-job", move || HelperResult::FaceResult {
            key,
            face: job.face_index,
            result: super::face_job::run(&job, &engine),
        })
    }

    /// Restores a photo with the compare view's model B on the engine behind `engine` (the
    /// window's), from a helper thread.
    pub fn compare_job(
        &self,
        key: u64,
        job: super::compare_job::CompareJob,
        engine: Sender<crate::engine::worker::Command>,
    ) -> std::io::Result<()> {
        self.on_thread("gui-compare-job", move || HelperResult::CompareResult { key, result: super::compare_job::run(&job, &engine) })
    }

    fn on_thread(&self, name: &str, work: impl FnOnce() -> HelperResult + Send + 'static) -> std::io::Result<()> {
        let tx = self.results_tx.clone();
        let wake = self.wake.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let _ = tx.send(work());
            wake();
        })?;
        Ok(())
    }

    /// Opens a file dialog on its own thread (dialogs block until the user answers).
    pub fn dialog(&mut self, purpose: DialogPurpose, start_dir: Option<PathBuf>) {
        if self.dialog_open {
            return;
        }
        self.dialog_open = true;
        let tx = self.results_tx.clone();
        let wake = self.wake.clone();
        let _ = std::thread::Builder::new().name("gui-dialog".into()).spawn(move || {
            let mut dialog = rfd::FileDialog::new();
            if let Some(dir) = start_dir.filter(|d| d.is_dir()) {
                dialog = dialog.set_directory(dir);
            }
            let images: Vec<&str> = crate::archive::inputs::IMAGE_EXTENSIONS.to_vec();
            let paths = match purpose {
                DialogPurpose::Photos => dialog.add_filter("Images", &images).set_title("Add photos").pick_files(),
                DialogPurpose::Folder => dialog.set_title("Add a folder of photos").pick_folder().map(|p| vec![p]),
                DialogPurpose::Weights => dialog
                    .add_filter("GPEN weights", &["pth", "pt", "safetensors"])
                    .set_title("Open GPEN weights")
                    .pick_file()
                    .map(|p| vec![p]),
                DialogPurpose::CompareWeights => dialog
                    .add_filter("GPEN weights", &["pth", "pt", "safetensors"])
                    .set_title("Model B: GPEN weights to compare with")
                    .pick_file()
                    .map(|p| vec![p]),
                DialogPurpose::OutputDir => dialog.set_title("Output folder").pick_folder().map(|p| vec![p]),
            };
            let _ = tx.send(HelperResult::Picked { purpose, paths: paths.unwrap_or_default() });
            wake();
        });
    }

    /// Downloads `entry` into `store` on a thread of its own (resuming its `.part`, validating and
    /// hashing it), reporting progress at most every [`DOWNLOAD_REPORT_INTERVAL`] and then the
    /// outcome. Not on the engine worker: a download waits on the network for minutes, and the
    /// worker must stay free for the GPU work and the window's commands.
    pub fn download(&self, entry: ModelEntry, store: ModelStore, cancel: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let tx = self.results_tx.clone();
        let wake = self.wake.clone();
        std::thread::Builder::new().name("gui-download".into()).spawn(move || {
            let last: Mutex<Option<Instant>> = Mutex::new(None);
            let progress_tx = tx.clone();
            let progress_wake = wake.clone();
            let report = move |bytes: u64, total: Option<u64>| {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let due = last.is_none_or(|t| now.duration_since(t) >= DOWNLOAD_REPORT_INTERVAL);
                // The last chunk always shows, so the bar reaches its end while the file is verified.
                if due || total == Some(bytes) {
                    *last = Some(now);
                    let _ = progress_tx.send(HelperResult::DownloadProgress { bytes, total });
                    progress_wake();
                }
            };
            let options =
                DownloadOptions { progress: Progress::Callback(Box::new(report)), cancel: Some(cancel), ..DownloadOptions::default() };
            let outcome = match crate::weights::download(&entry, &store, &options) {
                Ok(path) => DownloadOutcome::Installed { name: entry.name.clone(), path },
                Err(ModelError::Cancelled { got, .. }) => DownloadOutcome::Cancelled { kept: got },
                // As `models download` says it: a refused file left nothing behind.
                Err(e) if e.is_wrong_content() && !matches!(e, ModelError::WebPage { .. }) => {
                    DownloadOutcome::Failed(format!("{e}; nothing was installed"))
                }
                Err(e) => DownloadOutcome::Failed(e.to_string()),
            };
            let _ = tx.send(HelperResult::DownloadFinished(outcome));
            wake();
        })
    }
}

/// What decides which detector the preview needs.
type DetectorKey = (Result<crate::config::DetectorUse, crate::error::ConfigError>, u32, u64);

fn detector_key(config: &crate::config::RunConfig) -> DetectorKey {
    (config.choices().detector, config.detect_threshold.to_bits(), config.min_face.to_bits())
}

/// Why a photo has no detection preview.
#[derive(Debug, thiserror::Error)]
enum PreviewError {
    #[error(transparent)]
    Photo(#[from] crate::photo::PhotoError),
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
    #[error("no preview")]
    Empty,
}

fn detect_preview(detector: &dyn FaceDetector, path: &std::path::Path) -> Result<(Vec<Face>, Preview), PreviewError> {
    let photo = read_photo(path, &ReadLimits::default())?;
    let faces = detector.detect(&photo.pixels)?;
    let preview = preview(&photo.pixels, PREVIEW_SIDE).ok_or(PreviewError::Empty)?;
    Ok((faces, preview))
}

/// The configuration of a weights file, from its tensor shapes (nothing goes to a device).
fn model_info(path: &std::path::Path) -> Result<(String, crate::restore::network::GpenConfig), crate::checkpoint::CheckpointError> {
    let state = crate::checkpoint::read_state_dict(path)?;
    let config = crate::restore::checkpoint::infer_config(&state.shapes())
        .map_err(|reason| crate::checkpoint::CheckpointError::NotGpen { path: path.into(), reason })?;
    let text = format!(
        "GPEN {}×{} px faces, channel multiplier {}, narrow {}, {:.1} M parameters",
        config.size,
        config.size,
        config.channel_multiplier,
        config.narrow,
        config.parameter_count() as f64 / 1e6
    );
    Ok((text, config))
}
