//! Everything the window shows, kept apart from drawing so it can be tested: the photo queue, the
//! selection, the settings (persisted), the memory history and the run's progress. Engine events
//! are folded in by [`AppState::apply`]; the panels read it and push [`Action`]s.

use crate::config::RunConfig;
use crate::detect::Face;
use crate::engine::memory::MemorySample;
use crate::engine::worker::{Command, EngineEvent, Preview, Progress};
use crate::gui::download::{DownloadState, ModelDownload, ModelSource};
use crate::photo::OutputFormat;
use crate::pipeline::{Outcome, PhotoId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the memory plot looks back.
pub const HISTORY_SPAN: Duration = Duration::from_secs(300);

/// Where a photo is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum PhotoStatus {
    Queued,
    Detecting,
    Restoring,
    Done,
    NoFaces,
    Skipped,
    Failed(String),
    Cancelled,
}

impl PhotoStatus {
    pub fn label(&self) -> &'static str {
        match self {
            PhotoStatus::Queued => "queued",
            PhotoStatus::Detecting => "detecting",
            PhotoStatus::Restoring => "restoring",
            PhotoStatus::Done => "done",
            PhotoStatus::NoFaces => "no faces",
            PhotoStatus::Skipped => "already done",
            PhotoStatus::Failed(_) => "failed",
            PhotoStatus::Cancelled => "cancelled",
        }
    }

    /// The engine is working on it: it cannot be removed.
    pub fn in_flight(&self) -> bool {
        matches!(self, PhotoStatus::Detecting | PhotoStatus::Restoring)
    }
}

/// One queued photo.
#[derive(Debug, Clone)]
pub struct Row {
    /// The photo's id, from the queue to the engine's events (stable across runs).
    pub key: PhotoId,
    pub path: PathBuf,
    /// The photo as the walk found it: where its result goes (the same naming as the command line).
    pub photo: crate::archive::Photo,
    pub name: String,
    /// Handed to the engine's queue and not ended since.
    pub in_engine: bool,
    pub status: PhotoStatus,
    /// Faces found (by the engine, or by the detection preview).
    pub faces: Vec<Face>,
    pub faces_known: bool,
    /// Indices into `faces` the user switched off: the run restores only the others (they go to
    /// the engine as given faces, so it does not detect this photo again).
    pub faces_off: BTreeSet<usize>,
    /// Faces given their own strength (index into `faces`), overriding the run's.
    pub face_strength: std::collections::BTreeMap<usize, f32>,
    /// Each face's identity as the last run measured it (index into `faces`).
    pub identity: Vec<Option<crate::identity::FaceIdentity>>,
    /// The photo as the comparison's model B restored it (the window's A | B), or why it could not.
    pub b: Option<Result<crate::gui::compare_job::CompareResult, crate::gui::face_job::FaceToolError>>,
    /// B is restoring this photo now.
    pub b_running: bool,
    pub before: Option<Preview>,
    pub after: Option<Preview>,
    /// Bumped whenever `before`/`after` change, so textures are uploaded again.
    pub revision: u64,
    pub output: Option<PathBuf>,
    pub face_errors: Vec<String>,
    pub thumbnail: Option<image::RgbImage>,
    pub thumbnail_requested: bool,
    pub preview_requested: bool,
}

/// The output format as the settings panel offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FormatChoice {
    Png,
    Jpeg,
    Webp,
    Tiff,
}

impl FormatChoice {
    pub fn of(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Png => FormatChoice::Png,
            OutputFormat::Jpeg { .. } => FormatChoice::Jpeg,
            OutputFormat::Webp => FormatChoice::Webp,
            OutputFormat::Tiff { .. } => FormatChoice::Tiff,
        }
    }
}

/// What the user chose, with the run configuration (the engine's own type, sent to it whole whenever
/// it changes). Only the choices are remembered between sessions ([`super::saved_settings`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UiSettings {
    pub run: RunConfig,
    /// The JPEG quality, kept while another format is chosen.
    pub jpeg_quality: u8,
    /// Folders are searched in their sub-folders too.
    pub recursive: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        let out_dir = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join("Pictures").join("gpen-restored"))
            .unwrap_or_else(|| PathBuf::from("restored"));
        UiSettings { run: RunConfig { out_dir, ..RunConfig::default() }, jpeg_quality: OutputFormat::DEFAULT_JPEG_QUALITY, recursive: true }
    }
}

impl UiSettings {
    /// Chooses the output format (a JPEG with the remembered quality).
    pub fn set_format(&mut self, choice: FormatChoice) {
        self.run.format = match choice {
            FormatChoice::Png => OutputFormat::Png,
            FormatChoice::Jpeg => OutputFormat::Jpeg { quality: self.jpeg_quality.clamp(1, 100) },
            FormatChoice::Webp => OutputFormat::Webp,
            FormatChoice::Tiff => OutputFormat::Tiff { compression: crate::photo::TiffCompression::Deflate },
        };
    }
}

/// One point of the memory history.
#[derive(Debug, Clone, Copy)]
pub struct MemoryPoint {
    /// Seconds since the window opened.
    pub t: f64,
    pub used_total: u64,
    pub used_by_us: u64,
    pub batch: Option<usize>,
}

#[derive(Debug, Default)]
pub struct MemoryState {
    pub latest: Option<MemorySample>,
    pub history: VecDeque<MemoryPoint>,
    /// The engine's batch and why, during a run.
    pub recommendation: Option<(usize, String)>,
    /// Between runs: the batch a run would use now for the selected model, the live memory reading
    /// and the slider's ratio, and why (nothing is loaded for it).
    pub live: Option<(usize, String)>,
    /// What `live` and `live_tiles` are planned with, from a helper thread, with the key of the
    /// settings they were made for.
    pub plan_inputs: Option<(String, super::live_plan::PlanInputs)>,
    /// The key of the inputs last asked for, and when.
    plan_asked: Option<(String, Instant)>,
    /// The SR tiles the engine planned last, and why (during a run with upscaling).
    pub tiles: Option<String>,
    /// Between runs: the tiles the selected photo would get now, and why.
    pub live_tiles: Option<String>,
    /// Out-of-memory recoveries and CPU fallbacks, newest last.
    pub events: Vec<String>,
    pub calibrated: Option<String>,
}

/// What the selected model file is, read in the background from its tensor shapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ModelInfo {
    #[default]
    Unknown,
    Reading,
    Config(String),
    Invalid(String),
}

#[derive(Debug, Default)]
pub struct RunState {
    pub running: bool,
    pub paused: bool,
    pub progress: Progress,
    pub summary: Option<String>,
    pub model_loaded: Option<String>,
    pub model_error: Option<String>,
}

/// Zoom and pan shared by the before and after views (so they stay synchronized).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareView {
    pub split_mode: bool,
    /// 1 shows the whole photo.
    pub zoom: f32,
    /// The photo point (0..1 on both axes) at the centre of the view.
    pub center: [f32; 2],
    /// Position of the split line (0..1) in split mode.
    pub split: f32,
    pub show_boxes: bool,
    /// Show model A's result beside model B's instead of before | after.
    pub ab_mode: bool,
}

impl Default for CompareView {
    fn default() -> Self {
        CompareView { split_mode: false, zoom: 1.0, center: [0.5, 0.5], split: 0.5, show_boxes: true, ab_mode: false }
    }
}

/// What the panels ask for; [`super::Studio`] carries it out after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Engine(Command),
    AddPaths(Vec<PathBuf>),
    PickPhotos,
    PickFolder,
    PickWeights,
    PickOutputDir,
    OpenOutputFolder,
    Remove(u64),
    Clear,
    Select(u64),
    /// A row became visible without a thumbnail.
    Thumbnail(u64),
    /// The selected photo has no preview yet: run the detection preview.
    DetectPreview(u64),
    Start,
    /// The model file, device or precision changed.
    ModelChanged,
    /// Any other setting changed: the engine gets the whole configuration again.
    SettingsChanged,
    /// Switch a face of a photo off (or back on) for the run.
    ToggleFace(u64, usize),
    /// Give a face of a photo its own strength (`None`: the run's again).
    FaceStrength(u64, usize, Option<f32>),
    /// Choose the second generator (B) the compare view can show beside the run's.
    PickCompareWeights,
    /// Restore a photo with model B, with the faces the run restored.
    CompareB(u64),
    /// Download (or resume) the model the missing-model banner offers.
    DownloadModel,
    /// Download an optional add-on (RetinaFace, ParseNet) by catalogue name.
    DownloadAddon(String),
    CancelDownload,
    /// Open the face tool on face `usize` of photo `u64`: colorize or inpaint it.
    OpenFaceTool(u64, usize, crate::weights::Task),
    /// Run the open face tool (inpaint what was brushed, or colorize again).
    RunFaceTool,
    CloseFaceTool,
}

/// The whole state of the window.
/// What the window says once the engine's thread is gone.
pub const ENGINE_GONE: &str = "the engine stopped unexpectedly; finished results are kept. Restart gpen-studio to continue";

#[derive(Debug)]
pub struct AppState {
    pub rows: Vec<Row>,
    /// Canonical paths of the rows, for ignoring duplicates.
    known: HashSet<PathBuf>,
    next_key: u64,
    pub selected: Option<u64>,
    pub settings: UiSettings,
    pub weights_exist: bool,
    pub model_info: ModelInfo,
    /// The selected model file's configuration, once read.
    pub model_config: Option<crate::restore::network::GpenConfig>,
    /// The missing-model banner's download.
    pub download: ModelDownload,
    /// CUDA devices by name (index = CUDA index).
    pub cuda_devices: Vec<String>,
    pub memory: MemoryState,
    pub run: RunState,
    pub compare: CompareView,
    pub started: Instant,
    /// A drag with files is over the window.
    pub drop_hover: bool,
    /// Dropped or picked files and folders still being walked by the helper thread.
    pub walks_pending: usize,
    /// Messages for the status line, newest last.
    pub log: Vec<String>,
    /// One face being colorized or inpainted, in a window of its own.
    pub face_tool: Option<crate::gui::face_tool::FaceTool>,
    /// The second generator of the compare view's A | B (not remembered between sessions).
    pub compare_b: Option<PathBuf>,
}

impl AppState {
    /// The whole configuration for the engine: the settings, with the faces of photos where the
    /// user switched some off.
    pub fn configure_command(&self) -> Command {
        let mut run = self.settings.run.clone();
        run.given_faces = self.given_faces().map(std::sync::Arc::new);
        Command::Configure(Box::new(run))
    }

    /// The kept faces, with their own strengths, of every photo with a face switched off or given
    /// its own strength (keyed by the photo's path, as the engine receives it); `None` when the user
    /// changed no face.
    pub fn given_faces(&self) -> Option<crate::config::GivenFaces> {
        let mut given = crate::config::GivenFaces::default();
        for row in self.rows.iter().filter(|r| r.faces_known && (!r.faces_off.is_empty() || !r.face_strength.is_empty())) {
            let kept: Vec<usize> = (0..row.faces.len()).filter(|i| !row.faces_off.contains(i)).collect();
            let strengths = kept.iter().map(|i| row.face_strength.get(i).copied()).collect();
            given.insert_with_strengths(row.path.to_string_lossy().into_owned(), kept.iter().map(|&i| row.faces[i]).collect(), strengths);
        }
        (!given.is_empty()).then_some(given)
    }

    /// Chooses the compare view's model B; results of another B are forgotten.
    pub fn set_compare_b(&mut self, weights: PathBuf) {
        if self.compare_b.as_ref() != Some(&weights) {
            for row in &mut self.rows {
                row.b = None;
            }
        }
        self.compare_b = Some(weights);
    }

    /// What model B gets for photo `key`: the faces the run restored (those left on, each with its
    /// own strength); `None` before its faces are known or without a model B.
    pub fn compare_job(&self, key: u64) -> Option<crate::gui::compare_job::CompareJob> {
        let weights_b = self.compare_b.clone()?;
        let row = self.row(key).filter(|r| r.faces_known)?;
        let kept: Vec<usize> = (0..row.faces.len()).filter(|i| !row.faces_off.contains(i)).collect();
        let mut faces = crate::config::GivenFaces::default();
        let strengths = kept.iter().map(|i| row.face_strength.get(i).copied()).collect();
        faces.insert_with_strengths(row.path.to_string_lossy().into_owned(), kept.iter().map(|&i| row.faces[i]).collect(), strengths);
        Some(crate::gui::compare_job::CompareJob { photo: row.photo.clone(), faces, settings: self.settings.run.clone(), weights_b })
    }

    /// Gives face `index` of photo `key` its own strength (`None`: the run's again). Returns
    /// whether anything changed.
    pub fn set_face_strength(&mut self, key: u64, index: usize, strength: Option<f32>) -> bool {
        let Some(row) = self.row_mut(key) else { return false };
        if index >= row.faces.len() {
            return false;
        }
        match strength {
            Some(s) => row.face_strength.insert(index, s.clamp(0.0, 1.0)) != Some(s),
            None => row.face_strength.remove(&index).is_some(),
        }
    }

    /// Switches face `index` of photo `key` off, or on again. Returns whether anything changed.
    pub fn toggle_face(&mut self, key: u64, index: usize) -> bool {
        let Some(row) = self.row_mut(key) else { return false };
        if index >= row.faces.len() {
            return false;
        }
        if !row.faces_off.remove(&index) {
            row.faces_off.insert(index);
        }
        true
    }

    /// The detector changed: previews of photos not restored yet were made with the old one, so
    /// they are detected again when shown (and faces switched off there are forgotten).
    pub fn forget_detections(&mut self) {
        for row in self.rows.iter_mut().filter(|r| matches!(r.status, PhotoStatus::Queued | PhotoStatus::Cancelled) && r.after.is_none()) {
            row.faces.clear();
            row.faces_known = false;
            row.faces_off.clear();
            row.face_strength.clear();
            row.identity.clear();
            row.before = None;
            row.preview_requested = false;
            row.revision += 1;
        }
    }

    /// The state with models downloaded into the data folder from the built-in catalogue.
    pub fn new(settings: UiSettings) -> Self {
        AppState::with_model_source(settings, ModelSource::default())
    }

    /// The state with models downloaded from and into `source` (tests: a local server and a
    /// temporary folder).
    pub fn with_model_source(settings: UiSettings, source: ModelSource) -> Self {
        let weights_exist = settings.run.weights.is_file();
        let download = ModelDownload::new(source, &settings.run.weights);
        AppState {
            rows: Vec::new(),
            known: HashSet::new(),
            next_key: 0,
            selected: None,
            settings,
            weights_exist,
            model_info: ModelInfo::Unknown,
            model_config: None,
            download,
            cuda_devices: Vec::new(),
            memory: MemoryState::default(),
            run: RunState::default(),
            compare: CompareView::default(),
            started: Instant::now(),
            drop_hover: false,
            walks_pending: 0,
            log: Vec::new(),
            face_tool: None,
            compare_b: None,
        }
    }

    pub fn set_weights(&mut self, path: PathBuf) {
        self.settings.run.weights = path;
        self.weights_exist = self.settings.run.weights.is_file();
        self.model_info = ModelInfo::Unknown;
        self.model_config = None;
        // An old error or cancellation was about the previous file's model.
        if self.download.running().is_none() {
            self.download.state = DownloadState::Idle;
        }
        self.download.refresh(&self.settings.run.weights);
    }

    /// Adds the photos a folder walk found (path, canonical path) that are not queued yet;
    /// returns the new ones with their ids, which the caller hands to the engine.
    pub fn add_collected(&mut self, found: Vec<(crate::archive::Photo, PathBuf)>) -> Vec<(PhotoId, crate::archive::Photo)> {
        let mut added = Vec::new();
        for (photo, canonical) in found {
            let path = photo.path.clone();
            if !crate::archive::inputs::is_image_name(&path) || !self.known.insert(canonical) {
                continue;
            }
            let key = self.next_key;
            self.next_key += 1;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
            self.rows.push(Row {
                key,
                path: path.clone(),
                photo: photo.clone(),
                name,
                in_engine: true,
                status: PhotoStatus::Queued,
                faces: Vec::new(),
                faces_known: false,
                faces_off: BTreeSet::new(),
                face_strength: Default::default(),
                identity: Vec::new(),
                b: None,
                b_running: false,
                before: None,
                after: None,
                revision: 0,
                output: None,
                face_errors: Vec::new(),
                thumbnail: None,
                thumbnail_requested: false,
                preview_requested: false,
            });
            added.push((key, photo));
        }
        if self.selected.is_none() {
            self.selected = self.rows.first().map(|r| r.key);
        }
        added
    }

    pub fn row(&self, key: u64) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    pub fn row_mut(&mut self, key: u64) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.key == key)
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.selected.and_then(|k| self.row(k))
    }

    /// Removes a photo that is not in flight; returns its engine id to take off the engine's queue.
    pub fn remove(&mut self, key: u64) -> Option<u64> {
        let index = self.rows.iter().position(|r| r.key == key && !r.status.in_flight())?;
        let row = self.rows.remove(index);
        self.known.remove(&row.path.canonicalize().unwrap_or_else(|_| row.path.clone()));
        if self.selected == Some(key) {
            self.selected = self.rows.get(index.min(self.rows.len().saturating_sub(1))).map(|r| r.key);
        }
        (row.in_engine && row.status == PhotoStatus::Queued).then_some(row.key)
    }

    /// Removes every photo not in flight; returns the engine ids to take off the engine's queue.
    pub fn clear(&mut self) -> Vec<u64> {
        let keys: Vec<u64> = self.rows.iter().filter(|r| !r.status.in_flight()).map(|r| r.key).collect();
        keys.into_iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Photos that a new run must hand to the engine again (cancelled ones); marks them queued.
    pub fn requeue_for_start(&mut self) -> Vec<(PhotoId, crate::archive::Photo)> {
        let mut photos = Vec::new();
        for row in &mut self.rows {
            if row.status == PhotoStatus::Cancelled || (row.status == PhotoStatus::Queued && !row.in_engine) {
                row.status = PhotoStatus::Queued;
                row.in_engine = true;
                photos.push((row.key, row.photo.clone()));
            }
        }
        photos
    }

    pub fn count(&self, status: &PhotoStatus) -> usize {
        self.rows.iter().filter(|r| &r.status == status).count()
    }

    /// Photos waiting for a run.
    pub fn waiting(&self) -> usize {
        self.rows.iter().filter(|r| matches!(r.status, PhotoStatus::Queued | PhotoStatus::Cancelled)).count()
    }

    /// Adds a message for the status line (the log keeps the last 200).
    /// The engine's channel closed: its thread is gone (it panicked, or was never there). A run in
    /// flight is shown as failed instead of "running" forever; the photos it held say why.
    pub fn engine_gone(&mut self) {
        if self.run.model_error.as_deref() == Some(ENGINE_GONE) {
            return;
        }
        for row in self.rows.iter_mut().filter(|r| matches!(r.status, PhotoStatus::Detecting | PhotoStatus::Restoring)) {
            row.status = PhotoStatus::Failed(ENGINE_GONE.into());
        }
        if self.run.running {
            self.run.summary = Some("Last run: stopped, the engine is gone".into());
        }
        self.run.running = false;
        self.run.paused = false;
        self.run.model_error = Some(ENGINE_GONE.into());
        self.note(format!("model: {ENGINE_GONE}"));
    }

    pub fn note(&mut self, message: String) {
        self.log.push(message);
        if self.log.len() > 200 {
            self.log.remove(0);
        }
    }

    fn push_memory_point(&mut self, point: MemoryPoint) {
        self.memory.history.push_back(point);
        while self.memory.history.front().is_some_and(|p| point.t - p.t > HISTORY_SPAN.as_secs_f64()) {
            self.memory.history.pop_front();
        }
    }

    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Recomputes the live recommendation with the latest inputs (only the planner's arithmetic:
    /// nothing is read here). Returns a request for new inputs when the settings they depend on
    /// changed, or the last ones are older than [`super::live_plan::PLAN_INPUTS_REFRESH`]; the
    /// window hands it to a helper thread.
    pub fn refresh_live_plan(&mut self) -> Option<super::live_plan::PlanJob> {
        let (Some(sample), Some(gpen)) = (&self.memory.latest, self.model_config) else {
            self.memory.live = None;
            return None;
        };
        let run = &self.settings.run;
        let (device, cuda) = (sample.device.clone(), !sample.cpu_mode);
        let key = super::live_plan::PlanJob::key(run, gpen, &device, cuda);
        if let Some((_, inputs)) = self.memory.plan_inputs.as_ref().filter(|(k, _)| *k == key) {
            let rec = crate::engine::plan::plan(Some((sample.free, sample.held)), sample.cpu_mode, run, &inputs.model);
            let tiles = self.live_tile_plan(&rec, inputs);
            self.memory.live = Some((rec.batch, displayable(&rec.reason)));
            self.memory.live_tiles = tiles;
        }
        let stale =
            self.memory.plan_asked.as_ref().is_none_or(|(k, at)| *k != key || at.elapsed() >= super::live_plan::PLAN_INPUTS_REFRESH);
        stale.then(|| {
            self.memory.plan_asked = Some((key.clone(), Instant::now()));
            super::live_plan::PlanJob::new(key, &self.settings.run, gpen, &device, cuda)
        })
    }

    /// The face tool's job holds the device (a run of its own).
    pub fn face_tool_running(&self) -> bool {
        self.face_tool.as_ref().is_some_and(|t| t.status == super::face_tool::ToolStatus::Running)
    }

    /// The files behind the live plan may have changed (a download finished): ask for its inputs
    /// again at the next frame.
    pub fn plan_inputs_outdated(&mut self) {
        self.memory.plan_asked = None;
    }

    /// The SR tiles of the selected photo if a run started now (its size from its preview).
    fn live_tile_plan(&self, rec: &crate::engine::planner::Recommendation, inputs: &super::live_plan::PlanInputs) -> Option<String> {
        let run = &self.settings.run;
        run.upscale?;
        let (per_pixel, multiple) = inputs.sr?;
        let row = self.selected.and_then(|k| self.rows.iter().find(|r| r.key == k))?;
        let preview = row.before.as_ref()?;
        let (w, h) =
            ((preview.image.width() as f32 / preview.scale).round() as u32, (preview.image.height() as f32 / preview.scale).round() as u32);
        let model = &inputs.model;
        let workers = run.workers.count().max(1) as u64;
        let left = rec.budget.saturating_sub(model.bytes(rec.batch)) / workers;
        let plan = match run.tile {
            Some(0) => "whole photos (tile 0)".to_string(),
            Some(t) => format!("tiles fixed at {t} px"),
            None => crate::upscale::plan_tiles(w, h, left, per_pixel, run.tile_pad, multiple).reason,
        };
        Some(format!("{}: {plan}", row.name))
    }

    /// A photo's row when its journey ended: its status, its result, and a note for a failure.
    fn photo_ended(&mut self, id: PhotoId, outcome: Outcome, after: Option<Preview>) {
        let Some(row) = self.row_mut(id) else { return };
        if let Some(output) = outcome.output() {
            row.output = Some(output.clone());
        }
        match outcome {
            Outcome::Restored { identity, .. } => {
                // The engine numbered the faces it got: the row's without those switched off.
                let kept = (0..row.faces.len()).filter(|i| !row.faces_off.contains(i));
                row.identity = vec![None; row.faces.len()];
                for (i, id) in kept.zip(identity) {
                    row.identity[i] = id;
                }
                row.status = PhotoStatus::Done;
                if after.is_some() {
                    row.after = after;
                    row.revision += 1;
                }
            }
            Outcome::NoFaces { .. } => {
                row.status = PhotoStatus::NoFaces;
                row.faces.clear();
                row.faces_known = true;
            }
            Outcome::AlreadyDone { .. } => row.status = PhotoStatus::Skipped,
            Outcome::Failed { error, .. } => {
                let error = displayable(&error.to_string());
                row.status = PhotoStatus::Failed(error.clone());
                let name = row.name.clone();
                self.note(format!("{name}: {error}"));
            }
            Outcome::Cancelled => {
                row.status = PhotoStatus::Cancelled;
                row.in_engine = false;
            }
        }
    }

    /// Folds one engine event into the state.
    pub fn apply(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::Memory(sample) => {
                let t = sample.taken.saturating_duration_since(self.started).as_secs_f64();
                let batch = self.memory.recommendation.as_ref().map(|r| r.0).filter(|_| self.run.running);
                self.push_memory_point(MemoryPoint {
                    t,
                    used_total: sample.total.saturating_sub(sample.free),
                    used_by_us: sample.used_by_us,
                    batch,
                });
                self.memory.latest = Some(sample);
            }
            EngineEvent::TilePlan { reason, .. } => self.memory.tiles = Some(displayable(&reason)),
            EngineEvent::Recommendation { batch, reason } => {
                self.memory.recommendation = Some((batch, displayable(&reason)));
                if let Some(last) = self.memory.latest.clone() {
                    let t = self.now();
                    self.push_memory_point(MemoryPoint {
                        t,
                        used_total: last.total.saturating_sub(last.free),
                        used_by_us: last.used_by_us,
                        batch: Some(batch),
                    });
                }
            }
            EngineEvent::ModelLoaded { config, device, precision } => {
                self.run.model_loaded = Some(format!("GPEN-{} on {device} ({precision})", config.size));
                self.run.model_error = None;
            }
            EngineEvent::ModelError(e) => {
                let e = displayable(&e.to_string());
                self.note(format!("model: {e}"));
                self.run.model_error = Some(e);
            }
            EngineEvent::Queued { id, .. } => {
                if let Some(row) = self.row_mut(id) {
                    row.in_engine = true;
                }
            }
            EngineEvent::PhotoStarted { id } => {
                if let Some(row) = self.row_mut(id) {
                    row.status = PhotoStatus::Detecting;
                }
            }
            EngineEvent::FacesFound { id, faces, before } => {
                if let Some(row) = self.row_mut(id) {
                    // With faces switched off the engine got the kept ones; the row keeps them
                    // all, so the switched-off ones stay shown (and can be switched on again).
                    if row.faces_off.is_empty() {
                        row.faces = faces;
                    }
                    row.faces_known = true;
                    if before.is_some() {
                        row.before = before;
                        row.revision += 1;
                    }
                    row.status = PhotoStatus::Restoring;
                }
            }
            EngineEvent::PhotoEnded { id, outcome, after } => self.photo_ended(id, outcome, after),
            EngineEvent::FaceFailed { id, face, error } => {
                if let Some(row) = self.row_mut(id) {
                    row.face_errors.push(format!("face {}: {}", face + 1, displayable(&error)));
                }
            }
            EngineEvent::OomRecovered { from, to } => {
                let t = self.now();
                self.memory.events.push(format!("{}: out of memory at batch {from}, retried with {to}", clock(t)));
            }
            EngineEvent::SrOomRecovered { id, oom_events, tile } => {
                let t = self.now();
                let name = self.row_mut(id).map(|r| r.name.clone()).unwrap_or_default();
                let how = crate::upscale::describe_recovery(oom_events, tile);
                self.memory.events.push(format!("{}: {name} upscaling: {how}", clock(t)));
            }
            EngineEvent::CpuFallback { id, face } => {
                let t = self.now();
                let name = self.row_mut(id).map(|r| r.name.clone()).unwrap_or_default();
                self.memory.events.push(format!("{}: {name} face {} restored on the CPU (did not fit alone)", clock(t), face + 1));
            }
            EngineEvent::MaskFallback { id, face, error } => {
                let t = self.now();
                let name = self.row_mut(id).map(|r| r.name.clone()).unwrap_or_default();
                self.memory.events.push(format!("{}: {name} face {}: no parsing mask ({error}), rectangle used", clock(t), face + 1));
            }
            EngineEvent::IdentityUnmeasured { id, face, error } => {
                let t = self.now();
                let name = self.row_mut(id).map(|r| r.name.clone()).unwrap_or_default();
                self.memory.events.push(format!("{}: {name} face {}: identity not measured ({error})", clock(t), face + 1));
            }
            EngineEvent::Progress(p) => self.run.progress = p,
            EngineEvent::Calibrated(model) => {
                self.memory.calibrated = Some(format!("calibrated: {} fixed + {} per face", gib(model.fixed), gib(model.per_face)));
            }
            EngineEvent::Paused => self.run.paused = true,
            EngineEvent::Resumed => self.run.paused = false,
            EngineEvent::Finished(summary) => {
                self.run.running = false;
                self.run.paused = false;
                self.run.summary = Some(format!(
                    "Last run: {} restored ({} faces), {} without faces, {} already done, {} failed, {} cancelled",
                    summary.photos_restored,
                    summary.faces_restored,
                    summary.photos_without_faces,
                    summary.photos_already_done,
                    summary.photos_failed,
                    summary.photos_cancelled
                ));
            }
        }
    }
}

/// The engine's messages with the few symbols that egui's built-in fonts lack spelled in ASCII
/// (they would show as empty boxes).
pub fn displayable(text: &str) -> String {
    text.replace('−', "-").replace('→', "->").replace(['⌊', '⌋'], "").replace('≤', "<=").replace('≥', ">=").replace('≈', "~")
}

/// `mm:ss` since the window opened.
pub fn clock(t: f64) -> String {
    let s = t.max(0.0) as u64;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// Bytes as GiB with one decimal.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A short display form of a path (the last two components).
pub fn short_path(path: &Path) -> String {
    let parts: Vec<_> = path.components().rev().take(2).collect();
    let tail: PathBuf = parts.into_iter().rev().collect();
    tail.display().to_string()
}
