//! The desktop window (eframe/egui, glow renderer). The engine worker does all tensor work; the
//! window drains its events every frame and sends [`Command`]s. Helper threads decode thumbnails,
//! run the detection preview, read model files, download models and hold file dialogs, so drawing
//! never blocks.
//!
//! [`state`] holds everything shown (testable without a window), [`panels`] draw it.

pub mod compare_job;
pub mod download;
pub mod face_job;
pub mod face_tool;
pub mod helpers;
pub mod live_plan;
pub mod panels;
pub mod saved_settings;
pub mod state;
pub mod textures;

use crate::engine::worker::{Command, Components, EngineEvent, EngineHandle, spawn};
use crossbeam_channel::{Receiver, Sender};
use download::{DownloadOutcome, DownloadState, Running};
use egui::{Color32, Ui};
use helpers::{DialogPurpose, HelperResult, Helpers};
use state::{Action, AppState, ModelInfo};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use textures::Textures;

/// The application id: also the name of the `.desktop` file and the settings folder.
pub const APP_ID: &str = "io.github.gpen_studio.GpenStudio";

/// The window: its state, the engine's channels, the helper threads and the textures.
pub struct Studio {
    pub state: AppState,
    commands: Sender<Command>,
    events: Receiver<EngineEvent>,
    /// Kept so the worker shuts down with the window (absent with a scripted engine in tests).
    engine: Option<EngineHandle>,
    pub helpers: Helpers,
    pub textures: Textures,
    /// The model download's thread, waited for briefly when the window closes.
    download_thread: Option<JoinHandle<()>>,
    /// What the detection previews were made with; when it changes they are made again.
    detector_settings: DetectorSettings,
}

type DetectorSettings = (Result<crate::config::DetectorUse, crate::error::ConfigError>, u32, u64);

fn detector_settings(run: &crate::config::RunConfig) -> DetectorSettings {
    (run.choices().detector, run.detect_threshold.to_bits(), run.min_face.to_bits())
}

/// How long closing the window waits for a cancelled download to stop (it stops between chunks;
/// a stalled connection must not hold the exit).
const DOWNLOAD_EXIT_WAIT: Duration = Duration::from_secs(2);

impl Studio {
    /// A window over any engine that speaks the worker's channels (the real one or a script).
    pub fn new(state: AppState, commands: Sender<Command>, events: Receiver<EngineEvent>, helpers: Helpers) -> Self {
        let detector_settings = detector_settings(&state.settings.run);
        let mut studio = Studio {
            state,
            commands,
            events,
            engine: None,
            helpers,
            textures: Textures::default(),
            download_thread: None,
            detector_settings,
        };
        studio.request_model_info();
        studio
    }

    /// A window over the real worker.
    pub fn with_engine(state: AppState, engine: EngineHandle, helpers: Helpers) -> Self {
        let mut studio = Studio::new(state, engine.commands.clone(), engine.events.clone(), helpers);
        studio.engine = Some(engine);
        studio
    }

    fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    fn request_model_info(&mut self) {
        if self.state.weights_exist {
            self.state.model_info = ModelInfo::Reading;
            self.helpers.model_info(self.state.settings.run.weights.clone());
        }
    }

    /// Queues photos (files or folders): a helper thread walks them, and the new ones are added
    /// and handed to the engine when it answers.
    pub fn add_paths(&mut self, paths: &[PathBuf]) {
        if !paths.is_empty() {
            self.state.walks_pending += 1;
            self.helpers.collect(paths.to_vec(), self.state.settings.recursive, self.state.settings.run.out_dir.clone());
        }
    }

    /// Takes what the engine and the helpers sent since the last frame.
    pub fn drain(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(event) => self.state.apply(event),
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    self.state.engine_gone();
                    break;
                }
            }
        }
        while let Ok(result) = self.helpers.results.try_recv() {
            match result {
                HelperResult::Thumbnail { key, image } => {
                    if let (Some(row), Some(image)) = (self.state.row_mut(key), image) {
                        row.thumbnail = Some(image);
                    }
                }
                HelperResult::Detected { key, result } => match result {
                    Ok((faces, preview)) => {
                        if let Some(row) = self.state.row_mut(key).filter(|r| r.before.is_none()) {
                            row.faces = faces;
                            row.faces_known = true;
                            row.before = Some(preview);
                            row.revision += 1;
                        }
                    }
                    Err(e) => self.state.log.push(e),
                },
                HelperResult::ModelInfo { path, result } => {
                    if path == self.state.settings.run.weights {
                        (self.state.model_info, self.state.model_config) = match result {
                            Ok((text, config)) => (ModelInfo::Config(text), Some(config)),
                            Err(e) => (ModelInfo::Invalid(e), None),
                        };
                    }
                }
                HelperResult::Picked { purpose, paths } => {
                    self.helpers.dialog_open = false;
                    match purpose {
                        DialogPurpose::Photos | DialogPurpose::Folder => self.add_paths(&paths),
                        DialogPurpose::Weights => {
                            if let Some(p) = paths.into_iter().next() {
                                self.state.set_weights(p);
                                self.model_changed();
                            }
                        }
                        DialogPurpose::OutputDir => {
                            if let Some(p) = paths.into_iter().next() {
                                self.state.settings.run.out_dir = p;
                                self.send(self.state.configure_command());
                            }
                        }
                        DialogPurpose::CompareWeights => {
                            if let Some(p) = paths.into_iter().next() {
                                self.state.set_compare_b(p);
                            }
                        }
                    }
                }
                HelperResult::Collected(found) => {
                    self.state.walks_pending = self.state.walks_pending.saturating_sub(1);
                    let added = self.state.add_collected(found);
                    if !added.is_empty() {
                        self.send(Command::EnqueuePhotos(added));
                    }
                }
                HelperResult::DownloadProgress { bytes, total } => self.state.download.progress(bytes, total),
                HelperResult::DownloadFinished(outcome) => self.download_finished(outcome),
                HelperResult::PlanInputs { key, inputs } => self.state.memory.plan_inputs = Some((key, inputs)),
                HelperResult::FaceCrop { key, face, result } => {
                    let Some(tool) = self.state.face_tool.as_mut().filter(|t| (t.key, t.face_index) == (key, face)) else { continue };
                    match result {
                        Ok(crop) => {
                            tool.set_crop(crop);
                            // Colorizing needs nothing more from the user.
                            if tool.task == crate::weights::Task::Colorize {
                                self.run_face_tool();
                            }
                        }
                        Err(e) => tool.status = face_tool::ToolStatus::Failed(format!("cannot align the face: {e}")),
                    }
                }
                HelperResult::CompareResult { key, result } => {
                    if let Err(e) = &result {
                        self.state.note(format!("model B: {e}"));
                    }
                    if let Some(row) = self.state.row_mut(key) {
                        row.b = Some(result);
                        row.b_running = false;
                        row.revision += 1;
                    }
                }
                HelperResult::FaceResult { key, face, result } => {
                    let Some(tool) = self.state.face_tool.as_mut().filter(|t| (t.key, t.face_index) == (key, face)) else { continue };
                    tool.finished(result);
                    if let Some((path, _)) = &tool.result {
                        let line = format!("face {} {}d: {}", face + 1, tool.task, path.display());
                        self.state.note(line);
                    }
                }
            }
        }
    }

    /// Starts (or resumes) the download of the model the banner offers.
    fn start_download(&mut self) {
        let Some(entry) = self.state.download.offer.clone().filter(|e| e.url.is_some()) else { return };
        self.start_download_of(entry);
    }

    /// Starts the download of an optional add-on (one download runs at a time).
    fn start_addon_download(&mut self, name: &str) {
        match self.state.download.source.catalogue.find(name) {
            Ok(entry) if entry.url.is_some() => {
                let entry = entry.clone();
                self.start_download_of(entry);
            }
            Ok(_) => {}
            Err(e) => self.state.note(e.to_string()),
        }
    }

    fn start_download_of(&mut self, entry: crate::weights::ModelEntry) {
        let download = &mut self.state.download;
        if download.running().is_some() {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        match self.helpers.download(entry.clone(), download.source.store.clone(), cancel.clone()) {
            Ok(thread) => {
                download.state = DownloadState::Running(Running::new(entry.name, cancel));
                self.download_thread = Some(thread);
            }
            Err(e) => download.state = DownloadState::Failed { message: format!("cannot start the download: {e}") },
        }
    }

    fn download_finished(&mut self, outcome: DownloadOutcome) {
        if let Some(thread) = self.download_thread.take() {
            let _ = thread.join();
        }
        self.state.download.finish(&outcome, &self.state.settings.run.weights);
        // An add-on installed changes what `auto` picks: plan with it at once.
        self.state.plan_inputs_outdated();
        match outcome {
            DownloadOutcome::Installed { name, path } => {
                self.state.note(format!("{name} installed and verified: {}", path.display()));
                let addon = self.state.download.source.catalogue.find(&name).is_ok_and(|e| e.is_addon());
                let for_face_tool = self.state.face_tool.as_ref().is_some_and(|t| t.model_name == name);
                if for_face_tool {
                    // The face tool's checkpoint, never the restoring model.
                    if self.state.face_tool.as_mut().is_some_and(|t| t.model_installed()) {
                        self.start_face_crop();
                    }
                } else if addon {
                    // `auto` picks the add-on up from the next run on.
                    self.model_changed();
                } else if !self.state.weights_exist {
                    // Only while the model is still missing: a file the user opened meanwhile stays.
                    self.state.set_weights(path.clone());
                    // set_weights made the download idle; it is done.
                    self.state.download.state = DownloadState::Done { path };
                    self.model_changed();
                }
            }
            DownloadOutcome::Cancelled { kept } => {
                self.state.note(format!("model download cancelled; {} MB kept to resume", download::mb(kept)));
            }
            DownloadOutcome::Failed(message) => self.state.note(format!("model download failed: {message}")),
        }
    }

    /// Opens the face tool on a face of a photo; it aligns the face at once when the task's
    /// checkpoint is installed, and offers its download when not.
    fn open_face_tool(&mut self, key: u64, index: usize, task: crate::weights::Task) {
        let Some(row) = self.state.row(key) else { return };
        let (Some(face), Some(name)) = (row.faces.get(index).copied(), face_tool::model_for(task)) else { return };
        let source = &self.state.download.source;
        let Ok(entry) = source.catalogue.find(name) else { return };
        let weights = source.store.path_of(entry);
        self.state.face_tool = Some(face_tool::FaceTool::new(key, index, face, row.path.clone(), task, name.into(), weights));
        self.textures.forget_slots(key, &[textures::Slot::FaceTool, textures::Slot::FaceResult]);
        self.start_face_crop();
    }

    fn start_face_crop(&mut self) {
        let Some(tool) = self.state.face_tool.as_mut().filter(|t| t.status == face_tool::ToolStatus::Aligning) else { return };
        if let Err(e) = self.helpers.face_crop(tool.key, tool.face_index, tool.photo.clone(), tool.face, tool.weights.clone()) {
            tool.status = face_tool::ToolStatus::Failed(format!("cannot start aligning: {e}"));
        }
    }

    /// Restores photo `key` with model B, unless a run holds the device (one run at a time).
    fn start_compare(&mut self, key: u64) {
        if self.state.run.running || self.state.face_tool_running() {
            self.state.note("model B waits: a run is using the device".to_string());
            return;
        }
        let Some(job) = self.state.compare_job(key) else { return };
        if let Some(row) = self.state.row_mut(key) {
            row.b_running = true;
        }
        if let Err(e) = self.helpers.compare_job(key, job, self.commands.clone())
            && let Some(row) = self.state.row_mut(key)
        {
            row.b_running = false;
            row.b = Some(Err(face_job::FaceToolError::Run(format!("cannot start the run: {e}"))));
        }
    }

    fn run_face_tool(&mut self) {
        // One run on the device at a time: the tool waits for the queue's run to end.
        if self.state.run.running {
            return;
        }
        let Some(tool) = self.state.face_tool.as_mut() else { return };
        let Some(job) = tool.job(&self.state.settings.run) else { return };
        tool.status = face_tool::ToolStatus::Running;
        if let Err(e) = self.helpers.face_job(tool.key, job, self.commands.clone()) {
            tool.status = face_tool::ToolStatus::Failed(format!("cannot start the run: {e}"));
        }
    }

    fn model_changed(&mut self) {
        let now = detector_settings(&self.state.settings.run);
        if self.detector_settings != now {
            self.detector_settings = now;
            self.state.forget_detections();
        }
        self.send(self.state.configure_command());
        self.state.run.model_loaded = None;
        self.state.run.model_error = None;
        self.request_model_info();
    }

    /// Carries out what a panel asked for (the panels return their actions; tests hand some in
    /// directly).
    pub fn handle(&mut self, action: Action) {
        match action {
            Action::Engine(c) => self.send(c),
            Action::AddPaths(p) => self.add_paths(&p),
            Action::PickPhotos => self.helpers.dialog(DialogPurpose::Photos, None),
            Action::PickFolder => self.helpers.dialog(DialogPurpose::Folder, None),
            Action::PickWeights => {
                let dir = self.state.settings.run.weights.parent().map(PathBuf::from);
                self.helpers.dialog(DialogPurpose::Weights, dir)
            }
            Action::PickOutputDir => self.helpers.dialog(DialogPurpose::OutputDir, Some(self.state.settings.run.out_dir.clone())),
            Action::OpenOutputFolder => {
                let dir = self.state.settings.run.out_dir.clone();
                let _ = std::fs::create_dir_all(&dir);
                // Spawned, not waited for: the file manager may stay open.
                if let Err(e) = std::process::Command::new("xdg-open").arg(&dir).spawn() {
                    self.state.log.push(format!("cannot open {}: {e}", dir.display()));
                }
            }
            Action::Remove(key) => {
                if let Some(id) = self.state.remove(key) {
                    self.send(Command::Remove(vec![id]));
                }
                self.textures.forget(key);
            }
            Action::Clear => {
                let ids = self.state.clear();
                if !ids.is_empty() {
                    self.send(Command::Remove(ids));
                }
                let kept: std::collections::HashSet<u64> = self.state.rows.iter().map(|r| r.key).collect();
                self.textures.retain(|key| kept.contains(&key));
            }
            Action::Select(key) => self.state.selected = Some(key),
            Action::Thumbnail(key) => {
                if let Some(row) = self.state.row(key) {
                    self.helpers.thumbnail(key, row.path.clone());
                }
            }
            Action::DetectPreview(key) => {
                if let Some(row) = self.state.row(key) {
                    self.helpers.detect(key, row.path.clone(), &self.state.settings.run);
                }
            }
            Action::ToggleFace(key, index) => {
                if self.state.toggle_face(key, index) {
                    self.send(self.state.configure_command());
                }
            }
            Action::PickCompareWeights => {
                let start = self.state.compare_b.as_ref().and_then(|p| p.parent().map(Path::to_path_buf));
                self.helpers.dialog(DialogPurpose::CompareWeights, start);
            }
            Action::CompareB(key) => self.start_compare(key),
            Action::FaceStrength(key, index, strength) => {
                if self.state.set_face_strength(key, index, strength) {
                    self.send(self.state.configure_command());
                }
            }
            Action::DownloadAddon(name) => self.start_addon_download(&name),
            // One run on the device at a time: a Start waits for the face tool's job.
            Action::Start if self.state.face_tool_running() => {}
            Action::Start => {
                let again = self.state.requeue_for_start();
                if !again.is_empty() {
                    self.send(Command::EnqueuePhotos(again));
                }
                self.send(self.state.configure_command());
                self.send(Command::Start);
                self.state.run.running = true;
                self.state.run.paused = false;
                self.state.run.summary = None;
            }
            Action::ModelChanged => self.model_changed(),
            Action::SettingsChanged => self.send(self.state.configure_command()),
            Action::DownloadModel => self.start_download(),
            Action::CancelDownload => self.state.download.cancel(),
            Action::OpenFaceTool(key, index, task) => self.open_face_tool(key, index, task),
            Action::RunFaceTool => self.run_face_tool(),
            Action::CloseFaceTool => self.state.face_tool = None,
        }
    }

    /// Files dragged over or dropped onto the window.
    fn take_drops(&mut self, ui: &Ui) {
        let (hovering, dropped) = ui.ctx().input(|i| (!i.raw.hovered_files.is_empty(), i.raw.dropped_files.clone()));
        self.state.drop_hover = hovering;
        if !dropped.is_empty() {
            let paths: Vec<PathBuf> = dropped.iter().map(|f| f.path().to_path_buf()).collect();
            self.add_paths(&paths);
        }
    }

    /// One frame: drain messages, take drops, draw every panel, carry out what they asked for.
    pub fn frame(&mut self, ui: &mut Ui) {
        self.drain();
        if let Some(job) = self.state.refresh_live_plan() {
            self.helpers.plan_inputs(job);
        }
        self.take_drops(ui);
        let mut actions = Vec::new();
        let state = &mut self.state;
        egui::Panel::top("controls").show(ui, |ui| {
            ui.add_space(4.0);
            panels::controls::run_controls(ui, state, &mut actions);
            if !state.weights_exist {
                panels::controls::missing_model_banner(ui, state, &mut actions);
            }
            if let Some(e) = &state.run.model_error {
                ui.colored_label(Color32::from_rgb(240, 90, 80), format!("Model error: {e}"));
            }
            ui.add_space(2.0);
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            let line = state.run.summary.clone().or_else(|| state.log.last().cloned()).unwrap_or_else(|| "Ready".into());
            ui.label(egui::RichText::new(line).small());
        });
        egui::Panel::left("queue").default_size(300.0).min_size(220.0).resizable(true).show(ui, |ui| {
            ui.add_space(4.0);
            panels::queue::queue_panel(ui, state, &mut self.textures, &mut actions);
        });
        egui::Panel::right("memory").default_size(320.0).min_size(260.0).resizable(true).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                ui.add_space(4.0);
                panels::memory::memory_panel(ui, &state.memory, state.run.running, &mut state.settings, &mut actions);
                ui.add_space(8.0);
                egui::CollapsingHeader::new("Settings").default_open(true).show(ui, |ui| {
                    panels::settings::settings_panel(ui, state, &mut actions);
                });
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let editable = !state.run.running;
            let faces = panels::compare::FaceSettings {
                strength: state.settings.run.strength,
                floor: state.settings.run.identity_floor,
                model_b: state.compare_b.clone(),
            };
            let row = state.selected.and_then(|k| state.rows.iter_mut().find(|r| r.key == k));
            panels::compare::compare_panel(ui, &mut state.compare, row, editable, faces, &mut self.textures, &mut actions);
        });
        let run_going = state.run.running;
        if let Some(tool) = state.face_tool.as_mut() {
            let download = state.download.running().map(|r| (r.name.clone(), r.text()));
            panels::face_tool::face_tool_window(ui.ctx(), tool, download, run_going, &mut self.textures, &mut actions);
        }
        if self.state.drop_hover {
            drop_overlay(ui);
        }
        for action in actions {
            self.handle(action);
        }
    }
}

fn drop_overlay(ui: &Ui) {
    let ctx = ui.ctx();
    let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop-overlay")));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(160));
    painter.rect_stroke(rect.shrink(6.0), 8.0, egui::Stroke::new(3.0, Color32::from_rgb(90, 170, 255)), egui::StrokeKind::Inside);
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop photos or folders to queue them",
        egui::FontId::proportional(28.0),
        Color32::WHITE,
    );
}

impl Drop for Studio {
    fn drop(&mut self) {
        // A download in flight stops at its next chunk and keeps its `.part` for a resume.
        self.state.download.cancel();
        if let Some(thread) = self.download_thread.take() {
            let deadline = Instant::now() + DOWNLOAD_EXIT_WAIT;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
    }
}

/// The eframe app: the studio plus settings persistence.
struct StudioApp(Studio);

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.0.frame(ui);
        // Keep the memory gauge live while idle (the worker also wakes us on every event).
        ui.ctx().request_repaint_after(std::time::Duration::from_secs(1));
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        saved_settings::save(storage, &self.0.state.settings);
    }
}

/// CUDA devices by name (NVML names; "CUDA device N" when NVML is unavailable).
fn cuda_devices() -> Vec<String> {
    let count = if tch::Cuda::is_available() { tch::Cuda::device_count().max(0) as usize } else { 0 };
    (0..count)
        .map(|i| crate::engine::memory::NvmlProbe::new(i).map(|p| p.name().to_string()).unwrap_or_else(|_| format!("CUDA device {i}")))
        .collect()
}

/// The window's icon: the same drawing the .desktop file names (assets/icons), embedded so a binary
/// run from the build tree shows it too.
pub fn window_icon() -> egui::IconData {
    const PNG: &[u8] = include_bytes!("../../assets/icons/hicolor/256x256/apps/io.github.gpen_studio.GpenStudio.png");
    let image = image::load_from_memory_with_format(PNG, image::ImageFormat::Png).expect("the embedded icon is a PNG").to_rgba8();
    egui::IconData { width: image.width(), height: image.height(), rgba: image.into_raw() }
}

/// Opens the window, with `photos` (files or folders) queued.
pub fn run(photos: Vec<PathBuf>) -> ExitCode {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_app_id(APP_ID)
            .with_title("GPEN Studio")
            .with_inner_size([1360.0, 860.0])
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true)
            .with_icon(window_icon()),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let result = eframe::run_native(
        APP_ID,
        options,
        Box::new(move |cc| {
            let settings = saved_settings::load(cc.storage);
            let mut state = AppState::new(settings);
            state.cuda_devices = cuda_devices();
            let ctx = cc.egui_ctx.clone();
            let engine = spawn(state.settings.run.clone(), Components::real(), Box::new(move || ctx.request_repaint()));
            let ctx = cc.egui_ctx.clone();
            let helpers = Helpers::start(Arc::new(move || ctx.request_repaint()), true);
            let mut studio = Studio::with_engine(state, engine, helpers);
            studio.add_paths(&photos);
            Ok(Box::new(StudioApp(studio)))
        }),
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot open the window: {e}");
            ExitCode::FAILURE
        }
    }
}
