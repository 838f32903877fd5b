//! The worker thread: owns the models and all tensor work; the UI and the CLI talk to it only
//! through `crossbeam-channel` messages ([`Command`] in, [`EngineEvent`] out).
//!
//! Between every step (a stage's report taken, a photo handed to the stages, or one batch of faces
//! restored) it applies the commands that arrived: a new memory ratio or batch override takes
//! effect at the next batch, pause waits, cancel drops the photos in flight (nothing partial is
//! written) and ends the run. The run itself is in [`super::run`].

use super::memory::{MemoryMonitor, MemoryProbe, MemorySample};
use super::memory_model::{self, CalibrationStore, MemoryModel, ModelSource};
use crate::archive::Photo;
use crate::config::{ResolvedRun, RunConfig};
use crate::detect::{Face, FaceDetector, WholeImage};
use crate::device::{Precision, device_name};
use crate::error::{ConfigError, SetupError};
use crate::identity::FaceIdentifier;
use crate::mask::FaceMasker;
use crate::pipeline::stages::FrontTools;
use crate::pipeline::{Outcome, PhotoId, Summary};
use crate::restore::FaceRestorer;
use crate::restore::gpen::Gpen;
use crate::restore::network::GpenConfig;
use crate::upscale::PhotoUpscaler;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tch::Device;

pub use crate::pipeline::stages::{Preview, preview};

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Add photos to the queue under the caller's ids (files; folders are expanded by the caller).
    /// An id already queued is ignored. Each result goes to the top of the output folder under
    /// the photo's own stem ([`Photo::direct`]).
    Enqueue(Vec<(PhotoId, PathBuf)>),
    /// The same for photos found in folders: each result goes to its [`Photo::key`] under the
    /// output folder (the input tree mirrored).
    EnqueuePhotos(Vec<(PhotoId, Photo)>),
    /// Take queued photos (by id) off the queue; photos already in flight are not affected.
    Remove(Vec<PhotoId>),
    /// Restore the queued photos (and any enqueued while running).
    Start,
    /// The whole run configuration. Memory ratio and batch override apply from the next batch;
    /// the rest from the next run (a different model file, device, precision or mode reloads).
    Configure(Box<RunConfig>),
    /// Measure the memory model on the device and store it.
    Calibrate,
    /// A short run of its own (the window's face tools): see [`AsideRun`].
    RunAside(Box<AsideRun>),
    Pause,
    Resume,
    Cancel,
    Shutdown,
}

/// A run with its own configuration and photos on the engine's device, so that one engine owns the
/// device: it waits until the engine is idle (a queue's run ends first), and while it runs the
/// engine reads no other command (they wait in the channel and apply after it). Its events go to
/// `events`, not to the engine's listener; the engine's queue, settings and loaded models are put
/// back as they were afterwards.
#[derive(Debug, Clone)]
pub struct AsideRun {
    pub config: RunConfig,
    /// Restored in order, photo id = index.
    pub photos: Vec<Photo>,
    pub events: Sender<EngineEvent>,
}

impl PartialEq for AsideRun {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && self.photos == other.photos && self.events.same_channel(&other.events)
    }
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

impl Progress {
    /// Faces a second and the time left, from `elapsed` since the run started.
    pub fn update_rates(&mut self, elapsed: Duration) {
        let elapsed = elapsed.as_secs_f64();
        self.faces_per_second = if elapsed > 0.0 { self.faces_done as f64 / elapsed } else { 0.0 };
        self.eta = (self.photos_done > 0).then(|| {
            let per_photo = elapsed / self.photos_done as f64;
            Duration::from_secs_f64(per_photo * self.photos_total.saturating_sub(self.photos_done) as f64)
        });
    }
}

#[derive(Debug, Clone)]
pub enum EngineEvent {
    Memory(MemorySample),
    Recommendation {
        batch: usize,
        reason: String,
    },
    /// The SR tiles planned for the photos now being dispatched, and why (with `--upscale`):
    /// `tile` is the tile side, `None` for whole photos.
    TilePlan {
        tile: Option<u32>,
        reason: String,
    },
    ModelLoaded {
        config: GpenConfig,
        device: String,
        precision: Precision,
    },
    ModelError(SetupError),
    Queued {
        id: PhotoId,
        path: PathBuf,
    },
    PhotoStarted {
        id: PhotoId,
    },
    /// `before` is absent when previews are off (`preview_side` 0).
    FacesFound {
        id: PhotoId,
        faces: Vec<Face>,
        before: Option<Preview>,
    },
    /// A photo's journey ended, in exactly one way (every queued photo gets one). `after` is the
    /// result's preview: a restored photo's, when previews are on.
    PhotoEnded {
        id: PhotoId,
        outcome: Outcome,
        after: Option<Preview>,
    },
    FaceFailed {
        id: PhotoId,
        face: usize,
        error: String,
    },
    OomRecovered {
        from: usize,
        to: usize,
    },
    /// A photo's upscaling ran out of memory `oom_events` times and finished in tiles of `tile` px
    /// (`None`: whole, after the cache was freed).
    SrOomRecovered {
        id: PhotoId,
        oom_events: usize,
        tile: Option<u32>,
    },
    CpuFallback {
        id: PhotoId,
        face: usize,
    },
    /// The face parser failed for this face; it was pasted with the feathered rectangle.
    MaskFallback {
        id: PhotoId,
        face: usize,
        error: String,
    },
    /// The identity network could not measure this face; it was pasted as restored.
    IdentityUnmeasured {
        id: PhotoId,
        face: usize,
        error: String,
    },
    Progress(Progress),
    Calibrated(MemoryModel),
    Paused,
    Resumed,
    /// A run ended: everything done, or cancelled.
    Finished(Summary),
}

/// Events waiting unread past which new events go without their previews. A window that does not
/// draw (minimised) reads nothing, and a long run would otherwise pile up a preview of every photo
/// (up to 3 MB each) in memory; the events themselves are small and always sent, and the engine
/// never waits for its reader. A photo's row keeps its earlier preview, or shows none.
pub const PREVIEW_BACKLOG: usize = 256;

/// `event` as sent with `waiting` events unread: without its preview past [`PREVIEW_BACKLOG`].
pub fn lighter_when_behind(mut event: EngineEvent, waiting: usize) -> EngineEvent {
    if waiting >= PREVIEW_BACKLOG {
        match &mut event {
            EngineEvent::FacesFound { before, .. } => *before = None,
            EngineEvent::PhotoEnded { after, .. } => *after = None,
            _ => {}
        }
    }
    event
}

/// Builds the GPEN restorer for a run on a device.
pub type MakeRestorer = Box<dyn FnMut(&RunConfig, Device) -> Result<Box<dyn FaceRestorer>, SetupError> + Send>;
/// Builds the CPU restorer for faces that do not fit the device alone (`None`: there is none).
pub type MakeFallback = Box<dyn FnMut(&RunConfig, Device) -> Option<Box<dyn FaceRestorer>> + Send>;
/// Builds one detection worker's detector.
pub type MakeDetector = Box<dyn FnMut(&ResolvedRun, Device) -> Result<Box<dyn FaceDetector + Send>, SetupError> + Send>;
/// Builds the run's upscaler, which the engine's thread runs (`None`: the run does not upscale).
pub type MakeUpscaler = Box<dyn FnMut(&ResolvedRun, Device) -> Result<Option<Box<dyn PhotoUpscaler + Send>>, SetupError> + Send>;
/// Builds the paste masks for restored faces of a crop size (`None`: the feathered rectangle).
pub type MakeMasker = Box<dyn FnMut(&ResolvedRun, Device, u32) -> Result<Option<Box<dyn FaceMasker>>, SetupError> + Send>;
/// Builds the identity network that measures each restored face (`None`: faces are not measured).
pub type MakeIdentity = Box<dyn FnMut(&ResolvedRun, Device) -> Result<Option<Box<dyn FaceIdentifier>>, SetupError> + Send>;
/// The memory model of a loaded restorer (calibration store or analytic estimate).
pub type MakeMemoryModel = Box<dyn FnMut(&dyn FaceRestorer, &ResolvedRun, &str) -> MemoryModel + Send>;
/// Measures the memory model of a loaded restorer.
pub type Calibrate = Box<dyn FnMut(&dyn FaceRestorer, &RunConfig, &str) -> Result<MemoryModel, SetupError> + Send>;

/// The parts the worker builds on its own thread; tests substitute fakes.
pub struct Components {
    pub restorer: MakeRestorer,
    /// A CPU restorer for faces that do not fit the device even alone (none when running on the CPU).
    pub fallback: MakeFallback,
    /// Called once for each CPU stage worker that detects (each gets its own copy).
    pub detector: MakeDetector,
    /// Called once per load: the run's upscaler (`None` when the run does not upscale), run on the
    /// engine's thread between a photo's read and its search.
    pub upscaler: MakeUpscaler,
    /// The paste masks of restored faces of the given crop size (the face parser); `None` pastes
    /// with the feathered rectangle.
    pub masker: MakeMasker,
    /// The identity network of the run's faces (with the guard's floor, if any).
    pub identity: MakeIdentity,
    pub probe: Box<dyn FnMut(Device) -> Box<dyn MemoryProbe> + Send>,
    /// The memory model for a loaded restorer (calibration store or analytic estimate).
    pub memory_model: MakeMemoryModel,
    /// Measures the memory model (the `Calibrate` command).
    pub calibrate: Calibrate,
}

impl Components {
    /// The product: GPEN from the weights file, MTCNN, NVML or system-RAM probes.
    pub fn real() -> Self {
        Components {
            restorer: Box::new(|s, device| {
                if !s.weights.exists() {
                    return Err(ConfigError::MissingFile(crate::paths::missing_weights_help(&s.weights)).into());
                }
                s.check_task()?;
                s.precision.check_device(device)?;
                let unit_range = s.run_task() == crate::weights::Task::Seg2Face;
                Gpen::load(&s.weights, device, s.precision)
                    .map(|mut g| {
                        g.unit_range = unit_range;
                        Box::new(g) as Box<dyn FaceRestorer>
                    })
                    .map_err(|e| SetupError::Load(e.to_string()))
            }),
            fallback: Box::new(|s, device| {
                if device == Device::Cpu || !s.weights.exists() {
                    return None;
                }
                Gpen::load(&s.weights, Device::Cpu, Precision::Fp32).ok().map(|g| Box::new(g) as Box<dyn FaceRestorer>)
            }),
            detector: Box::new(|s, device| s.load_detector(device)),
            upscaler: Box::new(|s, device| {
                let Some(path) = &s.upscaler else { return Ok(None) };
                let up = crate::upscale::Upscaler::load(path, device).map_err(|e| SetupError::Load(e.to_string()))?;
                match s.upscale {
                    Some(want) if want != up.scale() => Err(ConfigError::BadValue(format!(
                        "{} upscales ×{}, not ×{want}; give the ×{want} model (GPEN's {}) with --sr-weights",
                        path.display(),
                        up.scale(),
                        crate::config::sr_file(want)
                    ))
                    .into()),
                    _ => Ok(Some(Box::new(up) as Box<dyn PhotoUpscaler + Send>)),
                }
            }),
            masker: Box::new(|s, device, crop| match &s.mask {
                crate::config::MaskUse::Parser(path) => {
                    crate::mask::ParsedMask::load(path, s.parser_size, crop, device).map(|m| Some(Box::new(m) as Box<dyn FaceMasker>))
                }
                crate::config::MaskUse::Rectangle => Ok(None),
            }),
            identity: Box::new(|s, device| {
                let Some(path) = &s.identity else { return Ok(None) };
                let net = crate::identity::IdentityNet::load(path, device).map_err(|e| SetupError::Load(e.to_string()))?;
                Ok(Some(Box::new(net) as Box<dyn FaceIdentifier>))
            }),
            probe: Box::new(super::memory::probe_for),
            memory_model: Box::new(|restorer, s, device_label| {
                let Some(config) = restorer.config() else { return unknown_model() };
                let gpen = super::plan::memory_model_for(&config, s.precision, device_label);
                super::plan::run_model(gpen, s, restorer.as_gpen().is_some_and(|g| g.device.is_cuda()), restorer.size())
            }),
            calibrate: Box::new(|restorer, s, device_label| {
                let gpen = restorer.as_gpen().ok_or_else(|| SetupError::Calibration("only GPEN can be calibrated".into()))?;
                let model = memory_model::calibrate(gpen).map_err(|e| SetupError::Calibration(e.to_string()))?;
                if let Some(config) = restorer.config() {
                    let mut store = CalibrationStore::load(&CalibrationStore::default_path());
                    store.insert(device_label, &config, s.precision, &model);
                    store.save().map_err(|e| SetupError::Calibration(e.to_string()))?;
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
pub fn spawn(config: RunConfig, components: Components, wake: Box<dyn Fn() + Send>) -> EngineHandle {
    let (command_tx, command_rx) = crossbeam_channel::unbounded();
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let crash_events = event_tx.clone();
    let thread = std::thread::Builder::new()
        .name("gpen-worker".into())
        .spawn(move || {
            let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut worker = Worker::new(config, components, command_rx, event_tx, wake);
                worker.serve();
            }));
            // A bug must not leave a front end waiting for a run that will never finish: say so,
            // and end the run (the window shows it failed, the CLI exits with status 1).
            if let Err(panic) = served {
                let reason = crate::pipeline::runner::internal_error(panic.as_ref());
                let _ = crash_events.send(EngineEvent::ModelError(SetupError::Crashed(reason)));
                let _ = crash_events.send(EngineEvent::Finished(Summary::default()));
            }
        })
        .expect("spawn the worker thread");
    EngineHandle { commands: command_tx, events: event_rx, thread: Some(thread) }
}

/// What the worker should do after looking at its commands.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum Flow {
    Continue,
    Cancel,
    Shutdown,
}

pub(super) struct Loaded {
    pub(super) restorer: Box<dyn FaceRestorer>,
    /// One per CPU stage worker that prepares photos (the first also serves the inline stages).
    pub(super) fronts: Vec<FrontTools>,
    /// The run's upscaler: one, on this thread, like the restorer (the device's one owner; on the
    /// CPU it gets every core).
    pub(super) upscaler: Option<Box<dyn PhotoUpscaler + Send>>,
    /// The upscaler's activations per input pixel and its tile multiple, for tile plans (when the
    /// run upscales).
    pub(super) sr_per_pixel: Option<(u64, u32)>,
    /// A CPU copy of the restorer for faces that do not fit the GPU even alone.
    pub(super) fallback: Option<Box<dyn FaceRestorer>>,
    pub(super) masker: Option<Box<dyn FaceMasker>>,
    pub(super) identity: Option<Box<dyn FaceIdentifier>>,
    pub(super) device: Device,
    pub(super) device_label: String,
    pub(super) model: MemoryModel,
    /// The configuration the models were loaded for, with the choices they were loaded by.
    pub(super) resolved: ResolvedRun,
}

pub(super) struct Worker {
    pub(super) config: RunConfig,
    pub(super) components: Components,
    pub(super) commands: Receiver<Command>,
    events: Sender<EngineEvent>,
    wake: Box<dyn Fn() + Send>,
    pub(super) queue: VecDeque<(PhotoId, Photo)>,
    queued: HashSet<PhotoId>,
    pub(super) loaded: Option<Loaded>,
    pub(super) monitor: Option<MemoryMonitor>,
    monitor_device: Option<Device>,
    last_sample: Option<Instant>,
    paused: bool,
    /// A cancel or shutdown taken in the middle of a step (between the upscaler's blocks), for the
    /// run's next checkpoint to act on.
    pub(super) interrupted: Option<Flow>,
    /// Aside runs waiting for the engine to be idle.
    asides: VecDeque<AsideRun>,
}

impl Worker {
    fn new(
        config: RunConfig,
        components: Components,
        commands: Receiver<Command>,
        events: Sender<EngineEvent>,
        wake: Box<dyn Fn() + Send>,
    ) -> Self {
        Worker {
            config,
            components,
            commands,
            events,
            wake,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            loaded: None,
            monitor: None,
            monitor_device: None,
            last_sample: None,
            paused: false,
            interrupted: None,
            asides: VecDeque::new(),
        }
    }

    pub(super) fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(lighter_when_behind(event, self.events.len()));
        (self.wake)();
    }

    /// Idle loop: reports memory, takes commands, runs when asked.
    fn serve(&mut self) {
        let device = self.config.device.resolve().unwrap_or(Device::Cpu);
        self.ensure_monitor(device);
        loop {
            self.report_memory();
            match self.commands.recv_timeout(self.config.monitor_interval) {
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
            while let Some(aside) = self.asides.pop_front() {
                self.run_aside(aside);
            }
        }
    }

    /// Runs `aside` in place of the engine's own settings, queue and listener, then puts those back.
    fn run_aside(&mut self, aside: AsideRun) {
        let AsideRun { config, photos, events } = aside;
        let config = std::mem::replace(&mut self.config, config);
        let loaded = self.loaded.take();
        let queue = std::mem::take(&mut self.queue);
        let queued = std::mem::take(&mut self.queued);
        let paused = std::mem::replace(&mut self.paused, false);
        let events = std::mem::replace(&mut self.events, events);
        // Nothing the engine's own listener says may act on the aside run (a cancel is the queue's).
        let commands = std::mem::replace(&mut self.commands, crossbeam_channel::never());
        self.enqueue(photos.into_iter().enumerate().map(|(i, p)| (i as PhotoId, p)).collect());
        self.run();
        self.config = config;
        self.loaded = loaded;
        self.queue = queue;
        self.queued = queued;
        self.paused = paused;
        self.events = events;
        self.commands = commands;
    }

    /// Applies a command that needs no run-level decision; returns the flow it asks for.
    fn apply(&mut self, command: Command) -> Flow {
        match command {
            Command::Enqueue(photos) => {
                self.enqueue(photos.into_iter().map(|(id, path)| (id, Photo::direct(path))).collect());
            }
            Command::EnqueuePhotos(photos) => self.enqueue(photos),
            Command::Remove(ids) => {
                let ids: HashSet<PhotoId> = ids.into_iter().collect();
                self.queue.retain(|(id, _)| !ids.contains(id));
                self.queued.retain(|id| !ids.contains(id));
            }
            Command::Configure(config) => match config.validate() {
                Ok(()) => {
                    let config = *config;
                    if self.loaded.as_ref().is_some_and(|l| l.resolved.model_differs(&config)) && !self.running() {
                        self.loaded = None;
                    }
                    self.config = config;
                }
                Err(e) => self.emit(EngineEvent::ModelError(SetupError::Settings(Box::new(e.into())))),
            },
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
            // Runs when the engine is idle (after the run now going, if any).
            Command::RunAside(aside) => self.asides.push_back(*aside),
            Command::Cancel => return Flow::Cancel,
            Command::Shutdown => return Flow::Shutdown,
            Command::Start | Command::Calibrate => {}
        }
        Flow::Continue
    }

    /// During a run the models are out of `loaded` (the run holds them).
    fn running(&self) -> bool {
        self.loaded.is_none()
    }

    /// Takes the commands that arrived during a step; while paused, waits for resume or cancel.
    pub(super) fn checkpoint(&mut self) -> Flow {
        if let Some(flow) = self.interrupted.take() {
            return flow;
        }
        loop {
            let command = if self.paused {
                match self.commands.recv_timeout(self.config.monitor_interval) {
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
                    Err(crossbeam_channel::TryRecvError::Empty) => return Flow::Continue,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return Flow::Shutdown,
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

    fn enqueue(&mut self, photos: Vec<(PhotoId, Photo)>) {
        for (id, photo) in photos {
            if self.queued.insert(id) {
                let path = photo.path.clone();
                self.queue.push_back((id, photo));
                self.emit(EngineEvent::Queued { id, path });
            }
        }
    }

    /// A photo left the queue for good (restored, failed, cancelled...): it may be queued again.
    pub(super) fn forget(&mut self, id: PhotoId) {
        self.queued.remove(&id);
    }

    pub(super) fn ensure_monitor(&mut self, device: Device) {
        if self.monitor_device != Some(device) {
            let probe = (self.components.probe)(device);
            self.monitor = Some(MemoryMonitor::start(probe, self.config.monitor_interval));
            self.monitor_device = Some(device);
        }
    }

    /// Sends the newest memory sample when the monitor took one since the last report.
    pub(super) fn report_memory(&mut self) {
        let Some(sample) = self.monitor.as_ref().and_then(|m| m.latest()) else { return };
        if self.last_sample != Some(sample.taken) {
            self.last_sample = Some(sample.taken);
            self.emit(EngineEvent::Memory(sample));
        }
    }

    /// A stage worker's detector (the whole image for aligned crops; none when the run only
    /// upscales).
    pub(super) fn make_front(&mut self, run: &ResolvedRun, device: Device) -> Result<FrontTools, SetupError> {
        if run.aligned {
            return Ok(FrontTools::detecting(Box::new(WholeImage)));
        }
        let detector = if run.upscale_only { None } else { Some((self.components.detector)(run, device)?) };
        Ok(FrontTools { detector })
    }

    pub(super) fn load(&mut self) -> Result<(), SetupError> {
        if self.loaded.is_some() {
            return Ok(());
        }
        let device = self.config.device.resolve()?;
        let restorer =
            if self.config.upscale_only { Box::new(crate::restore::NoRestorer) } else { (self.components.restorer)(&self.config, device)? };
        // Every `auto` chosen once for the models being loaded; the stages and the plan take these.
        let resolved = self.config.resolve()?;
        let front = self.make_front(&resolved, device)?;
        // Aligned crops are restored as they are: no background to upscale.
        let upscaler = if resolved.aligned { None } else { (self.components.upscaler)(&resolved, device)? };
        let label = super::memory::device_label(device);
        let sr_per_pixel = upscaler.as_ref().map(|u| {
            let per_pixel = u.rrdb_config().map_or(u.bytes_per_input_pixel(), |c| super::plan::sr_bytes_per_pixel(&c, &label));
            (per_pixel, u.multiple())
        });
        let fallback = if self.config.upscale_only { None } else { (self.components.fallback)(&self.config, device) };
        let masker = (self.components.masker)(&resolved, device, restorer.size())?;
        let identity = (self.components.identity)(&resolved, device)?;
        self.ensure_monitor(device);
        // The key `calibrate` stores under, so a calibration is found whether or not a sample exists yet.
        let device_label = super::memory::device_label(device);
        // A run that only upscales keeps no faces: its tiles may use the whole budget.
        let model = if self.config.upscale_only {
            MemoryModel { fixed: 0, per_face: 0, source: ModelSource::Analytic }
        } else {
            (self.components.memory_model)(restorer.as_ref(), &resolved, &device_label)
        };
        if let Some(config) = restorer.config() {
            self.emit(EngineEvent::ModelLoaded { config, device: device_name(device), precision: self.config.precision });
        }
        self.loaded = Some(Loaded {
            restorer,
            fronts: vec![front],
            upscaler,
            sr_per_pixel,
            fallback,
            masker,
            identity,
            device,
            device_label,
            model,
            resolved,
        });
        Ok(())
    }

    fn calibrate(&mut self) {
        if let Err(e) = self.load() {
            return self.emit(EngineEvent::ModelError(e));
        }
        let loaded = self.loaded.as_mut().expect("loaded");
        match (self.components.calibrate)(loaded.restorer.as_ref(), &self.config, &loaded.device_label) {
            Ok(model) => {
                loaded.model = model.clone();
                self.emit(EngineEvent::Calibrated(model));
            }
            Err(SetupError::Calibration(e)) => self.emit(EngineEvent::ModelError(SetupError::Calibration(e))),
            Err(e) => self.emit(EngineEvent::ModelError(SetupError::Calibration(e.to_string()))),
        }
    }
}

/// For a restorer that is not GPEN (nothing to estimate from): assume 1 GiB per face.
fn unknown_model() -> MemoryModel {
    MemoryModel { fixed: 0, per_face: 1 << 30, source: ModelSource::Analytic }
}
