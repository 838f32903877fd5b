//! The worker thread: owns the models and all tensor work; the UI and the CLI talk to it only
//! through `crossbeam-channel` messages ([`Command`] in, [`EngineEvent`] out).
//!
//! Between every step (one photo read and detected, or one batch of faces restored) it applies the
//! commands that arrived: a new memory ratio or batch override takes effect at the next batch,
//! pause waits, cancel drops the photos in flight (nothing partial is written) and ends the run.

use super::adaptive::AdaptiveBatch;
use super::memory::{MemoryMonitor, MemoryProbe, MemorySample};
use super::memory_model::{self, CalibrationStore, DetectionModel, MemoryModel, ModelSource};
use super::planner::{self, Recommendation};
use crate::detect::{DetectOptions, Face, FaceDetector, Mtcnn, mtcnn::default_models_dir};
use crate::device::{DeviceChoice, Precision, device_name};
use crate::gpen::Gpen;
use crate::model::GpenConfig;
use crate::photo::{OutputFormat, ReadLimits};
use crate::pipeline::{self, BatchSizer, Outcome, Pipeline, PipelineOptions, Summary};
use crate::restorer::FaceRestorer;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use image::RgbImage;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::Device;

/// Everything a run needs to know; the UI keeps a copy and sends changes as commands.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub weights: PathBuf,
    pub device: DeviceChoice,
    pub precision: Precision,
    pub strength: f32,
    pub out_dir: PathBuf,
    pub format: OutputFormat,
    pub save_faces: bool,
    pub overwrite: bool,
    /// Share of the free memory the batches may use (0.10-0.95).
    pub memory_ratio: f64,
    /// A fixed batch size instead of the recommendation (still halved on out-of-memory).
    pub batch_override: Option<usize>,
    pub max_batch: usize,
    /// Largest batch on the CPU. libtorch already spreads one face over every core, and the CPU
    /// benchmark (docs/BENCHMARKS.md) measured no gain from batching (2.07 s/face at 1, 2.09 at 2,
    /// 2.23 at 4), so the CPU runs one face per call unless this is raised.
    pub cpu_max_batch: usize,
    pub min_face: f64,
    pub max_megapixels: f64,
    /// How often memory is sampled (and reported) while idle or between steps.
    pub monitor_interval: Duration,
    /// Longest side of the before/after previews sent to the UI; 0 sends none.
    pub preview_side: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            weights: crate::paths::default_weights(),
            device: DeviceChoice::Auto,
            precision: Precision::Fp32,
            strength: 1.0,
            out_dir: PathBuf::from("restored"),
            format: OutputFormat::Png,
            save_faces: false,
            overwrite: false,
            memory_ratio: 0.8,
            batch_override: None,
            max_batch: 32,
            cpu_max_batch: 1,
            min_face: 20.0,
            max_megapixels: 100.0,
            monitor_interval: Duration::from_secs(1),
            preview_side: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Add photos (files; folders are expanded by the caller) to the queue; duplicates are ignored.
    Enqueue(Vec<PathBuf>),
    /// Take queued photos (by id) off the queue; photos already in flight are not affected.
    Remove(Vec<u64>),
    /// Restore the queued photos (and any enqueued while running).
    Start,
    SetMemoryRatio(f64),
    SetBatchOverride(Option<usize>),
    /// Model file, device or precision: the model is reloaded before the next run.
    SetModel { weights: PathBuf, device: DeviceChoice, precision: Precision },
    SetStrength(f32),
    SetOutput { dir: PathBuf, format: OutputFormat, save_faces: bool, overwrite: bool },
    /// Measure the memory model on the device and store it.
    Calibrate,
    Pause,
    Resume,
    Cancel,
    Shutdown,
}

/// A downscaled RGB image for display.
#[derive(Debug, Clone)]
pub struct Preview {
    pub image: RgbImage,
    /// Preview pixels per photo pixel.
    pub scale: f32,
}

#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub photos_done: usize,
    pub photos_total: usize,
    pub faces_done: usize,
    pub faces_total: usize,
    pub faces_per_second: f64,
    pub eta: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum EngineEvent {
    Memory(MemorySample),
    Recommendation { batch: usize, reason: String },
    ModelLoaded { config: GpenConfig, device: String, precision: Precision },
    ModelError(String),
    Queued { id: u64, path: PathBuf },
    PhotoStarted { id: u64 },
    /// `before` is absent when previews are off (`preview_side` 0).
    FacesFound { id: u64, faces: Vec<Face>, before: Option<Preview> },
    PhotoDone { id: u64, output: PathBuf, faces: usize, after: Option<Preview> },
    PhotoWithoutFaces { id: u64, output: PathBuf },
    PhotoSkipped { id: u64, output: PathBuf },
    PhotoFailed { id: u64, error: String },
    PhotoCancelled { id: u64 },
    FaceFailed { id: u64, face: usize, error: String },
    OomRecovered { from: usize, to: usize },
    CpuFallback { id: u64, face: usize },
    Progress(Progress),
    Calibrated(MemoryModel),
    Paused,
    Resumed,
    /// A run ended: everything done, or cancelled.
    Finished(Summary),
}

/// The parts the worker builds on its own thread; tests substitute fakes.
pub struct Components {
    pub restorer: Box<dyn FnMut(&EngineSettings, Device) -> Result<Box<dyn FaceRestorer>, String> + Send>,
    /// A CPU restorer for faces that do not fit the device even alone (none when running on the CPU).
    pub fallback: Box<dyn FnMut(&EngineSettings, Device) -> Option<Box<dyn FaceRestorer>> + Send>,
    pub detector: Box<dyn FnMut(&EngineSettings, Device) -> Result<Box<dyn FaceDetector>, String> + Send>,
    pub probe: Box<dyn FnMut(Device) -> Box<dyn MemoryProbe> + Send>,
    /// The memory model for a loaded restorer (calibration store or analytic estimate).
    pub memory_model: Box<dyn FnMut(&dyn FaceRestorer, &EngineSettings, &str) -> MemoryModel + Send>,
    /// Measures the memory model (the `Calibrate` command).
    pub calibrate: Box<dyn FnMut(&dyn FaceRestorer, &EngineSettings, &str) -> Result<MemoryModel, String> + Send>,
}

impl Components {
    /// The product: GPEN from the weights file, MTCNN, NVML or system-RAM probes.
    pub fn real() -> Self {
        Components {
            restorer: Box::new(|s, device| {
                if !s.weights.exists() {
                    return Err(crate::paths::missing_weights_help(&s.weights));
                }
                s.precision.check_device(device)?;
                Gpen::load(&s.weights, device, s.precision).map(|g| Box::new(g) as Box<dyn FaceRestorer>).map_err(|e| e.to_string())
            }),
            fallback: Box::new(|s, device| {
                if device == Device::Cpu || !s.weights.exists() {
                    return None;
                }
                Gpen::load(&s.weights, Device::Cpu, Precision::Fp32).ok().map(|g| Box::new(g) as Box<dyn FaceRestorer>)
            }),
            detector: Box::new(|s, device| {
                let options = DetectOptions { min_face_size: s.min_face, ..DetectOptions::default() };
                Mtcnn::load(&default_models_dir(), device)
                    .and_then(|m| m.with_options(options))
                    .map(|m| Box::new(m) as Box<dyn FaceDetector>)
                    .map_err(|e| e.to_string())
            }),
            probe: Box::new(super::memory::probe_for),
            memory_model: Box::new(|restorer, s, device_label| {
                let Some(config) = restorer.config() else { return unknown_model() };
                CalibrationStore::load(&CalibrationStore::default_path())
                    .get(device_label, &config, s.precision)
                    .unwrap_or_else(|| memory_model::analytic(&config, s.precision))
            }),
            calibrate: Box::new(|restorer, s, device_label| {
                let gpen = restorer.as_gpen().ok_or("only GPEN can be calibrated")?;
                let model = memory_model::calibrate(gpen)?;
                if let Some(config) = restorer.config() {
                    let mut store = CalibrationStore::load(&CalibrationStore::default_path());
                    store.insert(device_label, &config, s.precision, &model);
                    store.save()?;
                }
                Ok(model)
            }),
        }
    }
}

/// The UI's or CLI's end of the worker.
pub struct EngineHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<EngineEvent>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EngineHandle {
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Asks the worker to stop and waits for it.
    pub fn shutdown(mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the worker thread. `wake` is called after every event (the UI passes its repaint request).
pub fn spawn(settings: EngineSettings, components: Components, wake: Box<dyn Fn() + Send>) -> EngineHandle {
    let (command_tx, command_rx) = crossbeam_channel::unbounded();
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let thread = std::thread::Builder::new()
        .name("gpen-worker".into())
        .spawn(move || {
            let mut worker = Worker::new(settings, components, command_rx, event_tx, wake);
            worker.serve();
        })
        .expect("spawn the worker thread");
    EngineHandle { commands: command_tx, events: event_rx, thread: Some(thread) }
}

/// What the worker should do after looking at its commands.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Cancel,
    Shutdown,
}

struct Loaded {
    restorer: Box<dyn FaceRestorer>,
    detector: Box<dyn FaceDetector>,
    /// A CPU copy of the restorer for faces that do not fit the GPU even alone.
    fallback: Option<Box<dyn FaceRestorer>>,
    device: Device,
    device_label: String,
    model: MemoryModel,
}

struct Worker {
    settings: EngineSettings,
    components: Components,
    commands: Receiver<Command>,
    events: Sender<EngineEvent>,
    wake: Box<dyn Fn() + Send>,
    queue: VecDeque<(u64, PathBuf)>,
    seen: HashSet<PathBuf>,
    ids: HashMap<PathBuf, u64>,
    next_id: u64,
    loaded: Option<Loaded>,
    monitor: Option<MemoryMonitor>,
    monitor_device: Option<Device>,
    last_sample: Option<Instant>,
    paused: bool,
}

impl Worker {
    fn new(
        settings: EngineSettings,
        components: Components,
        commands: Receiver<Command>,
        events: Sender<EngineEvent>,
        wake: Box<dyn Fn() + Send>,
    ) -> Self {
        Worker {
            settings,
            components,
            commands,
            events,
            wake,
            queue: VecDeque::new(),
            seen: HashSet::new(),
            ids: HashMap::new(),
            next_id: 0,
            loaded: None,
            monitor: None,
            monitor_device: None,
            last_sample: None,
            paused: false,
        }
    }

    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
        (self.wake)();
    }

    /// Idle loop: reports memory, takes commands, runs when asked.
    fn serve(&mut self) {
        let device = self.settings.device.resolve().unwrap_or(Device::Cpu);
        self.ensure_monitor(device);
        loop {
            self.report_memory();
            match self.commands.recv_timeout(self.settings.monitor_interval) {
                Ok(Command::Start) => {
                    if self.run() == Flow::Shutdown {
                        return;
                    }
                }
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Command::Calibrate) => self.calibrate(),
                Ok(other) => {
                    self.apply(other);
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Applies a command that needs no run-level decision; returns the flow it asks for.
    fn apply(&mut self, command: Command) -> Flow {
        match command {
            Command::Enqueue(paths) => {
                for path in paths {
                    let key = path.canonicalize().unwrap_or_else(|_| path.clone());
                    if self.seen.insert(key) {
                        let id = self.next_id;
                        self.next_id += 1;
                        self.ids.insert(path.clone(), id);
                        self.queue.push_back((id, path.clone()));
                        self.emit(EngineEvent::Queued { id, path });
                    }
                }
            }
            Command::Remove(ids) => {
                let ids: HashSet<u64> = ids.into_iter().collect();
                let removed: Vec<PathBuf> =
                    self.queue.iter().filter(|(id, _)| ids.contains(id)).map(|(_, p)| p.clone()).collect();
                self.queue.retain(|(id, _)| !ids.contains(id));
                for path in removed {
                    self.seen.remove(&path.canonicalize().unwrap_or_else(|_| path.clone()));
                    self.ids.remove(&path);
                }
            }
            Command::SetMemoryRatio(r) => self.settings.memory_ratio = r.clamp(0.05, 1.0),
            Command::SetBatchOverride(b) => self.settings.batch_override = b.map(|b| b.max(1)),
            Command::SetModel { weights, device, precision } => {
                self.settings.weights = weights;
                self.settings.device = device;
                self.settings.precision = precision;
                self.loaded = None;
            }
            Command::SetStrength(s) => self.settings.strength = s.clamp(0.0, 1.0),
            Command::SetOutput { dir, format, save_faces, overwrite } => {
                self.settings.out_dir = dir;
                self.settings.format = format;
                self.settings.save_faces = save_faces;
                self.settings.overwrite = overwrite;
            }
            Command::Pause => {
                self.paused = true;
                self.emit(EngineEvent::Paused);
            }
            Command::Resume => {
                if self.paused {
                    self.paused = false;
                    self.emit(EngineEvent::Resumed);
                }
            }
            Command::Cancel => return Flow::Cancel,
            Command::Shutdown => return Flow::Shutdown,
            Command::Start | Command::Calibrate => {}
        }
        Flow::Continue
    }

    /// Takes the commands that arrived during a step; while paused, waits for resume or cancel.
    fn checkpoint(&mut self) -> Flow {
        loop {
            let command = if self.paused {
                match self.commands.recv_timeout(self.settings.monitor_interval) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => {
                        self.report_memory();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return Flow::Shutdown,
                }
            } else {
                match self.commands.try_recv() {
                    Ok(c) => c,
                    Err(_) => return Flow::Continue,
                }
            };
            match command {
                // Calibration needs the device to itself; it waits for the run to end.
                Command::Start | Command::Calibrate => {}
                other => match self.apply(other) {
                    Flow::Continue => {}
                    stop => {
                        self.paused = false;
                        return stop;
                    }
                },
            }
        }
    }

    fn ensure_monitor(&mut self, device: Device) {
        if self.monitor_device != Some(device) {
            let probe = (self.components.probe)(device);
            self.monitor = Some(MemoryMonitor::start(probe, self.settings.monitor_interval));
            self.monitor_device = Some(device);
        }
    }

    /// Sends the newest memory sample when the monitor took one since the last report.
    fn report_memory(&mut self) {
        let Some(sample) = self.monitor.as_ref().and_then(|m| m.latest()) else { return };
        if self.last_sample != Some(sample.taken) {
            self.last_sample = Some(sample.taken);
            self.emit(EngineEvent::Memory(sample));
        }
    }

    fn load(&mut self) -> Result<(), String> {
        if self.loaded.is_some() {
            return Ok(());
        }
        let device = self.settings.device.resolve()?;
        let restorer = (self.components.restorer)(&self.settings, device)?;
        let detector = (self.components.detector)(&self.settings, device)?;
        let fallback = (self.components.fallback)(&self.settings, device);
        self.ensure_monitor(device);
        // The key `calibrate` stores under, so a calibration is found whether or not a sample exists yet.
        let device_label = super::memory::device_label(device);
        let model = (self.components.memory_model)(restorer.as_ref(), &self.settings, &device_label);
        if let Some(config) = restorer.config() {
            self.emit(EngineEvent::ModelLoaded { config, device: device_name(device), precision: self.settings.precision });
        }
        self.loaded = Some(Loaded { restorer, detector, fallback, device, device_label, model });
        Ok(())
    }

    fn calibrate(&mut self) {
        if let Err(e) = self.load() {
            return self.emit(EngineEvent::ModelError(e));
        }
        let loaded = self.loaded.as_mut().expect("loaded");
        match (self.components.calibrate)(loaded.restorer.as_ref(), &self.settings, &loaded.device_label) {
            Ok(model) => {
                loaded.model = model.clone();
                self.emit(EngineEvent::Calibrated(model));
            }
            Err(e) => self.emit(EngineEvent::ModelError(format!("calibration failed: {e}"))),
        }
    }

    /// The batch size for the next call, from fresh memory readings and the current ratio.
    fn recommend(&mut self, sizer: &mut AdaptiveBatch, model: &MemoryModel, device: Device) -> Recommendation {
        let max_batch = match device {
            Device::Cpu => self.settings.cpu_max_batch.min(self.settings.max_batch),
            _ => self.settings.max_batch,
        };
        let max_age = self.settings.monitor_interval;
        let free = self.monitor.as_ref().and_then(|m| {
            m.refresh_if_older(max_age);
            m.smoothed_free()
        });
        let mut rec = match free {
            Some(free) => planner::recommend(free, self.settings.memory_ratio, model, max_batch),
            None => Recommendation { batch: 1, free: 0, budget: 0, reason: "no memory reading; 1 face at a time".into() },
        };
        if let Some(b) = self.settings.batch_override {
            rec.reason = format!("batch fixed at {b} by the user (the memory plan said {}: {})", rec.batch, rec.reason);
            rec.batch = b;
        }
        sizer.set_recommended(rec.batch);
        rec
    }

    /// Restores everything queued (and what is enqueued meanwhile). Returns Shutdown if asked to.
    fn run(&mut self) -> Flow {
        if let Err(e) = self.load() {
            self.emit(EngineEvent::ModelError(e));
            let summary = Summary::default();
            self.emit(EngineEvent::Finished(summary));
            return Flow::Continue;
        }
        if let Err(e) = std::fs::create_dir_all(&self.settings.out_dir) {
            self.emit(EngineEvent::ModelError(format!("cannot create {}: {e}", self.settings.out_dir.display())));
            self.emit(EngineEvent::Finished(Summary::default()));
            return Flow::Continue;
        }
        // A killed earlier run may have left temporary files; finished results are kept (resume).
        crate::paths::remove_stale_partials(&self.settings.out_dir);
        let loaded = self.loaded.take().expect("loaded above");
        let flow = self.run_loaded(&loaded);
        self.loaded = Some(loaded);
        flow
    }

    fn run_loaded(&mut self, loaded: &Loaded) -> Flow {
        let options = PipelineOptions {
            out_dir: self.settings.out_dir.clone(),
            batch: 1,
            strength: self.settings.strength,
            format: self.settings.format,
            save_faces: self.settings.save_faces,
            overwrite: self.settings.overwrite,
            limits: ReadLimits { max_pixels: (self.settings.max_megapixels * 1e6) as u64, ..ReadLimits::default() },
            device: loaded.device,
        };
        let mut pipeline =
            Pipeline::new(loaded.detector.as_ref(), loaded.restorer.as_ref(), options).with_fallback(loaded.fallback.as_deref());
        let mut sizer = AdaptiveBatch::new(1);
        let detection = DetectionModel::default();
        let started = Instant::now();
        let mut progress = Progress { photos_total: self.queue.len(), ..Progress::default() };
        let mut last_reason = String::new();
        let mut flow = Flow::Continue;
        loop {
            match self.checkpoint() {
                Flow::Continue => {}
                stop => {
                    flow = stop;
                    break;
                }
            }
            progress.photos_total = progress.photos_done + self.queue.len() + pipeline.pending_photos();
            let rec = self.recommend(&mut sizer, &loaded.model, loaded.device);
            if rec.reason != last_reason {
                last_reason = rec.reason.clone();
                self.emit(EngineEvent::Recommendation { batch: rec.batch, reason: rec.reason.clone() });
            }
            let queued = pipeline.queued_faces();
            let next_photo_fits = self.queue.front().is_none_or(|(_, p)| {
                let mp = photo_megapixels(p).unwrap_or(0.0);
                detection.fits(mp, rec.free, self.settings.memory_ratio)
            });
            if queued > 0 && (queued >= sizer.next() || self.queue.is_empty() || !next_photo_fits) {
                // Restore a batch: it is full, nothing else is coming, or the next photo's detection
                // needs the memory that the faces in flight hold.
                pipeline.restore_next(&mut sizer, &mut |e| self.relay(e, &mut progress));
            } else if let Some((id, path)) = self.queue.pop_front() {
                self.emit(EngineEvent::PhotoStarted { id });
                pipeline.add(&path, &mut |e| self.relay(e, &mut progress));
            } else {
                break;
            }
            let elapsed = started.elapsed().as_secs_f64();
            progress.faces_per_second = if elapsed > 0.0 { progress.faces_done as f64 / elapsed } else { 0.0 };
            progress.eta = (progress.photos_done > 0).then(|| {
                let per_photo = elapsed / progress.photos_done as f64;
                Duration::from_secs_f64(per_photo * (progress.photos_total - progress.photos_done) as f64)
            });
            self.emit(EngineEvent::Progress(progress.clone()));
            self.report_memory();
        }
        let mut dropped = Vec::new();
        if flow != Flow::Continue {
            // Cancel or shutdown: drop what is in flight and what was queued for this run.
            pipeline.cancel(&mut |e| self.relay(e, &mut progress));
            dropped = self.queue.drain(..).map(|(id, _)| id).collect();
            for &id in &dropped {
                progress.photos_done += 1;
                self.emit(EngineEvent::PhotoCancelled { id });
            }
        }
        let mut summary = pipeline.into_summary();
        summary.photos_cancelled += dropped.len();
        self.emit(EngineEvent::Progress(progress));
        self.emit(EngineEvent::Finished(summary));
        // Photos can be queued again after a run (e.g. after fixing the output folder).
        self.seen.clear();
        if flow == Flow::Shutdown { Flow::Shutdown } else { Flow::Continue }
    }
}

impl Worker {
    /// Turns a pipeline event into engine events, updating `progress`.
    fn relay(&self, event: &pipeline::Event, progress: &mut Progress) {
        let id_of = |p: &Path| self.ids.get(p).copied().unwrap_or(u64::MAX);
        let side = self.settings.preview_side;
        let out = match event {
            pipeline::Event::FacesFound { input, photo, faces } => {
                progress.faces_total += faces.len();
                EngineEvent::FacesFound { id: id_of(input), faces: faces.to_vec(), before: preview(photo, side) }
            }
            pipeline::Event::BatchDone { faces, failed, .. } => {
                progress.faces_done += faces - failed;
                return;
            }
            pipeline::Event::OomRecovered { from, to } => EngineEvent::OomRecovered { from: *from, to: *to },
            pipeline::Event::CpuFallback { input, face } => EngineEvent::CpuFallback { id: id_of(input), face: *face },
            pipeline::Event::FaceFailed { input, face, error } => {
                EngineEvent::FaceFailed { id: id_of(input), face: *face, error: error.to_string() }
            }
            pipeline::Event::PhotoDone { input, outcome, result } => {
                progress.photos_done += 1;
                let id = id_of(input);
                match outcome {
                    Outcome::Restored { output, faces } => EngineEvent::PhotoDone {
                        id,
                        output: output.clone(),
                        faces: *faces,
                        after: result.and_then(|r| preview(r, side)),
                    },
                    Outcome::NoFaces { output } => EngineEvent::PhotoWithoutFaces { id, output: output.clone() },
                    Outcome::AlreadyDone { output } => EngineEvent::PhotoSkipped { id, output: output.clone() },
                    Outcome::Failed { error, .. } => EngineEvent::PhotoFailed { id, error: error.clone() },
                    Outcome::Cancelled => EngineEvent::PhotoCancelled { id },
                }
            }
        };
        self.emit(out);
    }
}

/// For a restorer that is not GPEN (nothing to estimate from): assume 1 GiB per face.
fn unknown_model() -> MemoryModel {
    MemoryModel { fixed: 0, per_face: 1 << 30, source: ModelSource::Analytic }
}

/// Megapixels from the image header, without decoding.
fn photo_megapixels(path: &Path) -> Option<f64> {
    let (w, h) = image::ImageReader::open(path).ok()?.with_guessed_format().ok()?.into_dimensions().ok()?;
    Some(w as f64 * h as f64 / 1e6)
}

/// Downscales for display so the longer side is at most `side`; `None` when previews are off.
pub fn preview(image: &RgbImage, side: u32) -> Option<Preview> {
    if side == 0 {
        return None;
    }
    let (w, h) = image.dimensions();
    let longest = w.max(h).max(1);
    if longest <= side {
        return Some(Preview { image: image.clone(), scale: 1.0 });
    }
    let scale = side as f32 / longest as f32;
    let (pw, ph) = (((w as f32 * scale).round() as u32).max(1), ((h as f32 * scale).round() as u32).max(1));
    Some(Preview { image: image::imageops::thumbnail(image, pw, ph), scale })
}
