//! The desktop window, headless (egui_kittest): what a user does and sees, against a scripted
//! engine (the test holds the other ends of the worker's channels) and once against the real one.
//! The missing-model banner downloads from a loopback server into a temporary models folder.

mod common;

use common::server::{Behaviour, PAGE, serve};
use crossbeam_channel::{Receiver, Sender};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{By, NodeT, Queryable};
use gpen_studio::archive::Photo;
use gpen_studio::config::RunConfig;
use gpen_studio::detect::Face;
use gpen_studio::engine::memory::{CPU_DEVICE_NAME, MemorySample};
use gpen_studio::engine::worker::{Command, Components, EngineEvent, Preview, spawn};
use gpen_studio::gui::Studio;
use gpen_studio::gui::download::{DownloadState, ModelSource, mb};
use gpen_studio::gui::face_tool::ToolStatus;
use gpen_studio::gui::helpers::Helpers;
use gpen_studio::gui::state::{Action, AppState, PhotoStatus, UiSettings};
use gpen_studio::photo::PhotoError;
use gpen_studio::pipeline::{Outcome, PhotoFailure};
use gpen_studio::restore::network::GpenConfig;
use gpen_studio::weights::{Catalogue, ModelEntry};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct DroppedPath(PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// The test's ends of the channels the worker would hold.
struct Script {
    commands: Receiver<Command>,
    events: Sender<EngineEvent>,
}

impl Script {
    fn sent(&self) -> Vec<Command> {
        self.commands.try_iter().collect()
    }
}

fn settings(dir: &Path, weights: PathBuf) -> UiSettings {
    UiSettings { run: RunConfig { weights, out_dir: dir.join("out"), ..UiSettings::default().run }, ..UiSettings::default() }
}

/// A window over a scripted engine; `weights` decides whether the missing-model banner shows.
fn window(settings: UiSettings) -> (Harness<'static, Studio>, Script) {
    window_over(AppState::new(settings))
}

fn window_over(state: AppState) -> (Harness<'static, Studio>, Script) {
    let (command_tx, command_rx) = crossbeam_channel::unbounded();
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let studio = Studio::new(state, command_tx, event_rx, Helpers::start(Arc::new(|| {}), false));
    let harness = Harness::builder().with_size(egui::vec2(1360.0, 860.0)).build_ui_state(|ui, s: &mut Studio| s.frame(ui), studio);
    (harness, Script { commands: command_rx, events: event_tx })
}

/// A window over a scripted engine whose aside runs (the face tools' jobs) a real worker serves, as
/// the window's own engine does; every other command reaches the script.
fn window_serving_asides(state: AppState) -> (Harness<'static, Studio>, Script) {
    let (command_tx, command_rx) = crossbeam_channel::unbounded::<Command>();
    let (script_tx, script_rx) = crossbeam_channel::unbounded();
    let (event_tx, event_rx) = crossbeam_channel::unbounded();
    let worker = spawn(RunConfig::default(), Components::real(), Box::new(|| {}));
    std::thread::spawn(move || {
        for command in command_rx {
            match command {
                Command::RunAside(_) => worker.send(command),
                other => {
                    let _ = script_tx.send(other);
                }
            }
        }
    });
    let studio = Studio::new(state, command_tx, event_rx, Helpers::start(Arc::new(|| {}), false));
    let harness = Harness::builder().with_size(egui::vec2(1360.0, 860.0)).build_ui_state(|ui, s: &mut Studio| s.frame(ui), studio);
    (harness, Script { commands: script_rx, events: event_tx })
}

fn write_png(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])).save(path).unwrap();
}

fn preview(w: u32, h: u32) -> Preview {
    Preview { image: image::RgbImage::from_pixel(w, h, image::Rgb([120, 100, 80])), scale: 0.5 }
}

/// Drops files on the window and steps it until the helper thread has walked them.
fn drop_paths(harness: &mut Harness<'static, Studio>, paths: &[PathBuf]) {
    for p in paths {
        harness.input_mut().dropped_files.push(Arc::new(DroppedPath(p.clone())));
    }
    harness.run_steps(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.state().state.walks_pending > 0 {
        assert!(Instant::now() < deadline, "the dropped paths were never walked");
        std::thread::sleep(Duration::from_millis(5));
        harness.step();
    }
    harness.run_steps(1);
}

/// The engine commands' Enqueue lists, as paths.
fn enqueued(sent: &[Command]) -> Vec<Vec<PathBuf>> {
    sent.iter()
        .filter_map(|c| match c {
            Command::Enqueue(p) => Some(p.iter().map(|(_, p)| p.clone()).collect()),
            Command::EnqueuePhotos(p) => Some(p.iter().map(|(_, p)| p.path.clone()).collect()),
            _ => None,
        })
        .collect()
}

fn queued_paths(harness: &Harness<'static, Studio>) -> Vec<PathBuf> {
    harness.state().state.rows.iter().map(|r| r.path.clone()).collect()
}

/// One photo queued (the window's first id is 0) and acknowledged by the scripted engine.
const ID: u64 = 0;

fn one_queued_photo(dir: &Path, weights: PathBuf) -> (Harness<'static, Studio>, Script, PathBuf) {
    let photo = dir.join("grandma.png");
    write_png(&photo, 80, 60);
    let (mut harness, script) = window(settings(dir, weights));
    drop_paths(&mut harness, std::slice::from_ref(&photo));
    let sent = script.sent();
    assert!(sent.contains(&Command::EnqueuePhotos(vec![(ID, Photo::direct(photo.clone()))])), "the row's id goes to the engine: {sent:?}");
    script.events.send(EngineEvent::Queued { id: ID, path: photo.clone() }).unwrap();
    harness.run_steps(2);
    (harness, script, photo)
}

fn some_weights(dir: &Path) -> PathBuf {
    let w = dir.join("model.pth");
    std::fs::write(&w, b"not really a model").unwrap();
    w
}

#[test]
fn dropping_files_and_a_folder_queues_the_images_once() {
    let dir = tempfile::tempdir().unwrap();
    let loose = dir.path().join("loose.jpg");
    write_png(&dir.path().join("tmp.png"), 8, 8);
    std::fs::rename(dir.path().join("tmp.png"), &loose).unwrap();
    let folder = dir.path().join("album");
    write_png(&folder.join("a.png"), 16, 12);
    write_png(&folder.join("b.png"), 16, 12);
    write_png(&folder.join("nested/c.png"), 16, 12);
    std::fs::write(folder.join("notes.txt"), "not a photo").unwrap();
    let (mut harness, script) = window(settings(dir.path(), some_weights(dir.path())));

    harness.input_mut().hovered_files.push(egui::HoveredFile { path: Some(folder.clone()), mime: String::new() });
    harness.run_steps(1);
    assert!(harness.state().state.drop_hover, "a drag over the window is highlighted");
    harness.input_mut().hovered_files.clear();

    drop_paths(&mut harness, &[loose.clone(), folder.clone()]);
    let expected = vec![loose.clone(), folder.join("a.png"), folder.join("b.png"), folder.join("nested/c.png")];
    assert_eq!(queued_paths(&harness), expected);
    let sent = script.sent();
    assert_eq!(enqueued(&sent), std::slice::from_ref(&expected), "{sent:?}");
    assert!(!harness.state().state.drop_hover);
    harness.get_by_label_contains("0 of 4 photos");

    // The same photos again: nothing new is queued or sent.
    drop_paths(&mut harness, &[folder.join("a.png"), folder]);
    assert_eq!(queued_paths(&harness).len(), 4);
    assert!(enqueued(&script.sent()).is_empty());
    assert!(harness.get_all_by_label("loose.jpg").count() >= 1);
    assert!(harness.get_all_by_label_contains("4 photos").count() >= 2, "the queue's count and the progress bar");
}

#[test]
fn a_dropped_folder_is_walked_off_the_ui_thread() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("album");
    for i in 0..3 {
        write_png(&folder.join(format!("p{i}.png")), 16, 12);
    }
    let (mut harness, script) = window(settings(dir.path(), some_weights(dir.path())));
    harness.input_mut().dropped_files.push(Arc::new(DroppedPath(folder.clone())));
    harness.step();
    // The frame that took the drop only handed it to the helper: nothing was walked in it.
    assert_eq!(harness.state().state.walks_pending, 1);
    assert!(harness.state().state.rows.is_empty());
    assert!(enqueued(&script.sent()).is_empty());
    drop_paths(&mut harness, &[]);
    assert_eq!(queued_paths(&harness).len(), 3);
    assert_eq!(enqueued(&script.sent()).concat().len(), 3);
    harness.get_by_label_contains("0 of 3 photos");
}

#[test]
fn the_ratio_slider_sends_the_new_ratio_to_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script) = window(settings(dir.path(), some_weights(dir.path())));
    harness.run_steps(2);
    script.sent();
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "Memory ratio").set_value_accesskit(0.5);
    harness.run_steps(2);
    let ratios: Vec<f64> =
        script.sent().into_iter().filter_map(|c| if let Command::Configure(c) = c { Some(c.memory_ratio) } else { None }).collect();
    assert_eq!(ratios.last().copied(), Some(0.5), "{ratios:?}");
    assert_eq!(harness.state().state.settings.run.memory_ratio, 0.5);
}

#[test]
fn between_runs_the_panel_shows_the_batch_a_run_would_use_now_and_follows_the_slider() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script) = window(settings(dir.path(), common::golden_weights()));
    let gib = 1u64 << 30;
    script.events.send(EngineEvent::Memory(MemorySample::new("Fake GPU 16 GB".into(), false, 16 * gib, 8 * gib, 0, None))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.state().state.memory.live.is_none() {
        assert!(Instant::now() < deadline, "no live plan: {:?}", harness.state().state.model_info);
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
    harness.run_steps(1);
    // The golden 64 px model needs a few MiB a face: the plan is the largest batch allowed.
    harness.get_by_label_contains("Batch now: 32 faces");
    let reason = |h: &Harness<'static, Studio>| h.state().state.memory.live.clone().unwrap().1;
    assert!(reason(&harness).starts_with("8.0 GiB free × 0.80"), "{}", reason(&harness));
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "Memory ratio").set_value_accesskit(0.5);
    harness.run_steps(2);
    assert!(reason(&harness).starts_with("8.0 GiB free × 0.50"), "the plan follows the slider: {}", reason(&harness));
    assert!(script.sent().iter().all(|c| !matches!(c, Command::Start)), "nothing was run for it");
}

#[test]
fn a_finished_photo_shows_its_after_image_in_the_compare_view() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, _) = one_queued_photo(dir.path(), some_weights(dir.path()));
    harness.get_by_label_contains("After: not restored yet");
    let face = Face { bbox: [20.0, 10.0, 60.0, 50.0], score: 0.99, landmarks: [[0.0; 2]; 5] };
    script.events.send(EngineEvent::PhotoStarted { id: ID }).unwrap();
    script.events.send(EngineEvent::FacesFound { id: ID, faces: vec![face], before: Some(preview(40, 30)) }).unwrap();
    harness.run_steps(2);
    assert!(harness.get_all_by_label("restoring").count() >= 1);
    harness.get_by_label_contains("1 faces detected");
    script
        .events
        .send(EngineEvent::PhotoEnded {
            id: ID,
            outcome: Outcome::Restored { output: dir.path().join("out/grandma.png"), faces: 1, identity: vec![None] },
            after: Some(preview(40, 30)),
        })
        .unwrap();
    harness.run_steps(2);
    harness.get_by_label_contains("After 40×30");
    assert_eq!(harness.state().state.rows[0].status, PhotoStatus::Done);
    assert!(harness.state().textures.len() >= 2, "before and after are textures");
}

#[test]
fn a_failed_photo_shows_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, _) = one_queued_photo(dir.path(), some_weights(dir.path()));
    let error = PhotoFailure::Read(Arc::new(PhotoError::Corrupt {
        path: "grandma.png".into(),
        format: "PNG",
        detail: "the file ends early".into(),
    }));
    script.events.send(EngineEvent::PhotoEnded { id: ID, outcome: Outcome::Failed { error, faces_failed: 0 }, after: None }).unwrap();
    harness.run_steps(2);
    assert!(harness.get_all_by_label("failed").count() >= 1);
    harness.get_by_label_contains("Failed: grandma.png: the PNG data is truncated or corrupt (the file ends early)");
}

#[test]
fn without_a_model_file_a_banner_says_where_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, _script) = window(settings(dir.path(), dir.path().join("GPEN-BFR-512.pth")));
    harness.run_steps(2);
    harness.get_by_label("No GPEN model yet");
    harness.get_by_label_contains("gpen-studio models download GPEN-BFR-512");
    assert!(!harness.get_all_by_label("Open weights file…").collect::<Vec<_>>().is_empty());

    let (mut harness, _script) = window(settings(dir.path(), some_weights(dir.path())));
    harness.run_steps(2);
    assert!(harness.query_by_label("No GPEN model yet").is_none());
}

#[test]
fn without_a_gpu_the_memory_panel_says_cpu_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script) = window(settings(dir.path(), some_weights(dir.path())));
    let gib = 1u64 << 30;
    let sample = MemorySample::new(CPU_DEVICE_NAME.into(), true, 16 * gib, 9 * gib, gib, None);
    script.events.send(EngineEvent::Memory(sample)).unwrap();
    harness.run_steps(2);
    harness.get_by_label("CPU mode");
    harness.get_by_label_contains("System RAM, 16.0 GiB total");
}

#[test]
fn start_requeues_nothing_twice_and_sends_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, _) = one_queued_photo(dir.path(), some_weights(dir.path()));
    harness.get_by_label("Start").click();
    harness.run_steps(2);
    let sent = script.sent();
    assert!(matches!(sent.last(), Some(Command::Start)), "{sent:?}");
    assert!(enqueued(&sent).is_empty(), "already queued in the engine: {sent:?}");
    assert!(harness.state().state.run.running);
}

/// 1,000 queued photos: every one is listed, the rows on screen get their thumbnails from the helper
/// thread (uploaded as textures), and the rows off screen are not decoded. The frame time with such a
/// queue is `gpen-studio bench gui` (docs/BENCHMARKS.md), not a test.
#[test]
fn a_thousand_queued_photos_are_listed_and_only_the_rows_on_screen_get_thumbnails() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("many");
    for i in 0..1000 {
        write_png(&folder.join(format!("photo{i:04}.png")), 96, 72);
    }
    let (mut harness, _script) = window(settings(dir.path(), some_weights(dir.path())));
    drop_paths(&mut harness, &[folder]);
    assert_eq!(harness.state().state.rows.len(), 1000);
    let pending = |h: &Harness<'static, Studio>| {
        let rows = &h.state().state.rows;
        !rows.iter().any(|r| r.thumbnail_requested) || rows.iter().any(|r| r.thumbnail_requested && r.thumbnail.is_none())
    };
    // A guard against hanging forever, not a speed check.
    let deadline = Instant::now() + Duration::from_secs(300);
    while pending(&harness) {
        assert!(Instant::now() < deadline, "the visible thumbnails never arrived");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(2);
    let rows = &harness.state().state.rows;
    let with_thumbnail: Vec<&image::RgbImage> = rows.iter().filter_map(|r| r.thumbnail.as_ref()).collect();
    assert!(with_thumbnail.len() >= 10, "only {} rows on screen have a thumbnail", with_thumbnail.len());
    assert!(with_thumbnail.len() < 200, "{} thumbnails: rows off screen were decoded too", with_thumbnail.len());
    assert!(rows[999].thumbnail.is_none() && !rows[999].thumbnail_requested, "the last row is off screen");
    for t in &with_thumbnail {
        // 96×72 fitted into the thumbnail side: the longer side is the side, the shape kept.
        assert_eq!(
            (t.width(), t.height()),
            (gpen_studio::gui::helpers::THUMBNAIL_SIDE, gpen_studio::gui::helpers::THUMBNAIL_SIDE * 72 / 96)
        );
    }
    assert!(harness.state().textures.len() >= with_thumbnail.len(), "the thumbnails were uploaded as textures");
}

/// A window over the real engine (`ui_settings` for both) that has restored `photo`: dropped, started,
/// and stepped until the run is over.
fn restored_in_a_real_window(ui_settings: UiSettings, photo: PathBuf) -> Harness<'static, Studio> {
    let engine_settings = RunConfig { monitor_interval: Duration::from_millis(200), ..ui_settings.run.clone() };
    let engine = spawn(engine_settings, Components::real(), Box::new(|| {}));
    let studio = Studio::with_engine(AppState::new(ui_settings), engine, Helpers::start(Arc::new(|| {}), false));
    let mut harness = Harness::builder().with_size(egui::vec2(1360.0, 860.0)).build_ui_state(|ui, s: &mut Studio| s.frame(ui), studio);
    drop_paths(&mut harness, &[photo]);
    harness.get_by_label_contains("0 of 1 photos");
    harness.get_by_label("Start").click();
    step_real_until(&mut harness, |h| !h.state().state.run.running && h.state().state.rows[0].status == PhotoStatus::Done);
    harness
}

/// Steps a window over the real engine until `done` holds (a guard against a hung engine, not a
/// timing: 180 s).
fn step_real_until(harness: &mut Harness<'static, Studio>, done: impl Fn(&Harness<'static, Studio>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done(harness) {
        assert!(Instant::now() < deadline, "the engine did not finish: {:?}", harness.state().state.rows[0].status);
        harness.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    harness.run_steps(2);
}

/// The real worker with the small golden model restores a real photo; the window shows it done.
#[test]
fn the_real_engine_restores_a_photo_and_the_window_shows_it_done() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let weights = root.join("../shared/golden/gpen-64/weights.pth");
    let photo = root.join("../shared/photos/astronaut.png");
    assert!(weights.is_file() && photo.is_file(), "fixtures missing");
    let out = tempfile::tempdir().unwrap();
    let ui_settings = UiSettings {
        run: RunConfig {
            weights: weights.clone(),
            device: gpen_studio::device::DeviceChoice::Cpu,
            out_dir: out.path().into(),
            ..UiSettings::default().run
        },
        ..UiSettings::default()
    };
    let harness = restored_in_a_real_window(ui_settings, photo);
    let row = &harness.state().state.rows[0];
    assert_eq!(row.status, PhotoStatus::Done, "{:?}", harness.state().state.log);
    assert!(row.after.is_some() && row.before.is_some() && !row.faces.is_empty());
    assert!(out.path().join("astronaut.png").is_file());
    assert!(harness.get_all_by_label("done").count() >= 1);
    harness.get_by_label_contains("1 of 1 photos");
}

/// A | B: the real engine restores a photo with the run's model, then with model B (the same
/// weights under another name) from the compare view's button; B restores the same faces into
/// compare-<B>/ and each face shows its identity under both.
#[test]
fn model_b_restores_the_selected_photo_with_the_same_faces_and_the_view_shows_a_beside_b() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let weights = root.join("../shared/golden/gpen-64/weights.pth");
    let photo = root.join("../shared/photos/astronaut.png");
    let out = tempfile::tempdir().unwrap();
    let b = out.path().join("other.pth");
    std::fs::copy(&weights, &b).unwrap();
    let ui_settings = UiSettings {
        run: RunConfig {
            weights: weights.clone(),
            device: gpen_studio::device::DeviceChoice::Cpu,
            out_dir: out.path().into(),
            identity_weights: Some(root.join("../shared/golden/arcface/weights.pth")),
            ..UiSettings::default().run
        },
        ..UiSettings::default()
    };
    let mut harness = restored_in_a_real_window(ui_settings, photo);
    harness.state_mut().state.set_compare_b(b.clone());
    harness.run_steps(2);
    harness.get_by_label("B: other.pth");
    harness.get_by_label("Restore with B").click();
    step_real_until(&mut harness, |h| h.state().state.rows[0].b.is_some());
    harness.run_steps(1);
    let row = &harness.state().state.rows[0];
    let result = row.b.clone().unwrap().unwrap_or_else(|e| panic!("model B failed: {e}"));
    assert_eq!(result.output, out.path().join("compare-other/astronaut.png"));
    assert!(common::rgb(&result.output) == common::rgb(&out.path().join("astronaut.png")), "the same model on the same faces");
    assert!(harness.state().state.compare.ab_mode);
    assert!(harness.get_all_by_label_contains("A identity ").count() >= 1);
    assert!(harness.get_all_by_label_contains("B identity ").count() >= 1);
    harness.get_by_label("Restore with B again");
}

/// The golden generator's configuration (../shared/golden/gpen-64/config.json).
const GOLDEN: GpenConfig = GpenConfig::new(64, 1, 0.125);

fn golden_bytes() -> Vec<u8> {
    std::fs::read(common::golden_weights()).unwrap()
}

/// A window without a model whose banner downloads from `url` into `dir/models`: the catalogue
/// holds one entry, and the weights setting names its file in the store, as the default does.
fn download_window(dir: &Path, url: &str) -> (Harness<'static, Studio>, Script, ModelSource, ModelEntry) {
    let entry = ModelEntry::downloadable("GPEN-Test-64", "GPEN-Test-64.pth", url, GOLDEN, "the golden test generator");
    let source = ModelSource::new(dir.join("models"), Catalogue::new(vec![entry.clone()]));
    let state = AppState::with_model_source(settings(dir, source.store.path_of(&entry)), source.clone());
    let (mut harness, script) = window_over(state);
    harness.run_steps(2);
    harness.get_by_label("No GPEN model yet");
    (harness, script, source, entry)
}

fn download_state(harness: &Harness<'static, Studio>) -> DownloadState {
    harness.state().state.download.state.clone()
}

/// Steps the window until `done` holds; panics after `limit`.
fn step_until(harness: &mut Harness<'static, Studio>, limit: Duration, done: impl Fn(&Harness<'static, Studio>) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(harness) {
        assert!(Instant::now() < deadline, "timed out; download state {:?}", download_state(harness));
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.run_steps(2);
}

/// Steps the window until the download has failed; returns the message the banner shows.
fn failure_message(harness: &mut Harness<'static, Studio>, limit: Duration) -> String {
    step_until(harness, limit, |h| matches!(download_state(h), DownloadState::Failed { .. }));
    let DownloadState::Failed { message } = download_state(harness) else { unreachable!() };
    message
}

fn bytes_arrived(harness: &Harness<'static, Studio>) -> bool {
    harness.state().state.download.running().is_some_and(|r| r.bytes > 0)
}

/// The model files of the configurations sent, where one differs from the one before.
fn set_models(sent: &[Command]) -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = Vec::new();
    for c in sent {
        if let Command::Configure(c) = c
            && models.last() != Some(&c.weights)
        {
            models.push(c.weights.clone());
        }
    }
    models
}

fn checksums(source: &ModelSource) -> gpen_studio::weights::Checksums {
    source.store.checksums().unwrap()
}

#[test]
fn the_banner_downloads_the_model_with_progress_and_installs_it() {
    let body = golden_bytes();
    // About 1 s in 1 MiB pieces, so the progress bar is seen moving.
    let server = serve(body.clone(), vec![Behaviour::Slow { chunk: 1 << 20, pause: Duration::from_millis(60) }]);
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, source, entry) = download_window(dir.path(), &server.url);
    script.sent();

    harness.get_by_label("Download GPEN-Test-64").click();
    let size = format!("of {} MB", mb(body.len() as u64));
    let (mut partway, mut bar_texts) = (false, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(download_state(&harness), DownloadState::Done { .. }) {
        assert!(Instant::now() < deadline, "not installed: {:?}", download_state(&harness));
        harness.step();
        if let Some(r) = harness.state().state.download.running() {
            partway |= r.bytes > 0 && r.bytes < body.len() as u64 && r.total == Some(body.len() as u64);
        }
        let bar = harness.query_all(By::new().role(Role::ProgressIndicator).label_contains(&size)).next();
        if let Some(label) = bar.and_then(|b| b.accesskit_node().label()) {
            bar_texts.push(label);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(2);
    assert!(partway, "progress arrived while the file came in");
    let full = bar_texts.iter().any(|t| t.contains(" MB/s") && t.contains("ETA "));
    assert!(full, "the bar shows speed and time left: {bar_texts:?}");

    let path = source.store.path_of(&entry);
    assert_eq!(harness.state().state.settings.run.weights, path);
    assert!(harness.state().state.weights_exist);
    assert!(harness.query_by_label("No GPEN model yet").is_none(), "the banner is gone");
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert!(!source.store.part_of(&entry).exists());
    let (sha, bytes) = gpen_studio::weights::sha256_file(&common::golden_weights()).unwrap();
    let record = &checksums(&source)["GPEN-Test-64.pth"];
    assert_eq!((record.sha256.as_str(), record.bytes, record.config), (sha.as_str(), bytes, Some(GOLDEN)));
    assert_eq!(set_models(&script.sent()), std::slice::from_ref(&path), "the worker loads the new model once");
    let last = harness.state().state.log.last().cloned().unwrap_or_default();
    assert!(last.contains("GPEN-Test-64 installed and verified"), "{last}");
    harness.get_by_label_contains("installed and verified");
}

#[test]
fn an_interrupted_download_shows_the_error_and_resumes() {
    let body = golden_bytes();
    let half = body.len() / 2;
    let server = serve(body.clone(), vec![Behaviour::DropAfter(half), Behaviour::Serve]);
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, source, entry) = download_window(dir.path(), &server.url);
    script.sent();

    harness.get_by_label("Download GPEN-Test-64").click();
    let message = failure_message(&mut harness, Duration::from_secs(60));
    assert!(message.contains("was interrupted after"), "{message}");
    harness.get_by_label(&message);
    let kept = std::fs::metadata(source.store.part_of(&entry)).unwrap().len();
    assert!(kept > 0 && kept <= half as u64, "kept {kept} of {half}");
    assert!(!source.store.path_of(&entry).exists());
    assert!(set_models(&script.sent()).is_empty(), "nothing to load yet");
    harness.get_by_label("No GPEN model yet");

    harness.get_by_label(&format!("Resume download ({} MB kept)", mb(kept))).click();
    step_until(&mut harness, Duration::from_secs(60), |h| matches!(download_state(h), DownloadState::Done { .. }));
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[1].contains(&format!("range: bytes={kept}-")), "{}", requests[1]);
    let path = source.store.path_of(&entry);
    assert_eq!(std::fs::read(&path).unwrap(), body, "the resumed file is identical");
    assert_eq!(set_models(&script.sent()), [path]);
    assert!(harness.query_by_label("No GPEN model yet").is_none());
}

#[test]
fn a_cancelled_download_keeps_its_part_and_installs_nothing() {
    let body = golden_bytes();
    // About 8 s in all: cancelled long before the end.
    let server = serve(body.clone(), vec![Behaviour::Slow { chunk: 64 * 1024, pause: Duration::from_millis(30) }]);
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, source, entry) = download_window(dir.path(), &server.url);
    script.sent();

    harness.get_by_label("Download GPEN-Test-64").click();
    step_until(&mut harness, Duration::from_secs(30), bytes_arrived);
    harness.get_by_label("Cancel download").click();
    step_until(&mut harness, Duration::from_secs(30), |h| matches!(download_state(h), DownloadState::Cancelled { .. }));
    let DownloadState::Cancelled { kept } = download_state(&harness) else { unreachable!() };
    let part = source.store.part_of(&entry);
    assert_eq!(std::fs::metadata(&part).unwrap().len(), kept);
    assert!(kept > 0 && kept < body.len() as u64, "kept {kept}");
    assert!(!source.store.path_of(&entry).exists(), "no final file");
    assert!(checksums(&source).is_empty());
    assert!(set_models(&script.sent()).is_empty(), "no model to load");
    assert!(!harness.state().state.weights_exist);
    let resume = format!("Resume download ({} MB kept)", mb(kept));
    harness.get_by_label(&resume);

    // A later session offers the same resume.
    drop(harness);
    let (harness, _script, _, _) = download_window(dir.path(), &server.url);
    harness.get_by_label(&resume);
}

#[test]
fn closing_the_window_during_a_download_does_not_hang() {
    let body = golden_bytes();
    let server = serve(body.clone(), vec![Behaviour::Slow { chunk: 64 * 1024, pause: Duration::from_millis(30) }]);
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, _script, source, entry) = download_window(dir.path(), &server.url);
    harness.get_by_label("Download GPEN-Test-64").click();
    step_until(&mut harness, Duration::from_secs(30), bytes_arrived);
    drop(harness);
    // Closing did not wait for the download to finish: the .part is still short of the whole file.
    let part = source.store.part_of(&entry);
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < body.len() as u64, "the .part stays to resume: {kept}");
    // The download stopped with the window: the .part does not grow any more.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), kept, "still downloading after the window closed");
    assert!(!source.store.path_of(&entry).exists());
}

#[test]
fn a_web_page_instead_of_the_model_is_refused_in_the_banner() {
    let server = serve(PAGE.to_vec(), vec![Behaviour::Typed("text/html; charset=utf-8")]);
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, source, entry) = download_window(dir.path(), &server.url);
    script.sent();

    harness.get_by_label("Download GPEN-Test-64").click();
    let message = failure_message(&mut harness, Duration::from_secs(30));
    assert!(message.contains("got a web page, not a model") && message.contains("nothing was installed"), "{message}");
    harness.get_by_label(&message);
    harness.get_by_label("Retry");
    assert!(!source.store.path_of(&entry).exists() && !source.store.part_of(&entry).exists());
    assert!(checksums(&source).is_empty());
    assert!(set_models(&script.sent()).is_empty());
    assert!(!harness.state().state.weights_exist);
    harness.get_by_label("No GPEN model yet");
}

#[test]
fn switching_a_face_off_sends_the_kept_faces_to_the_engine_and_the_outline_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, photo) = one_queued_photo(dir.path(), some_weights(dir.path()));
    let face = |x: f32| Face { bbox: [x, 10.0, x + 30.0, 40.0], score: 0.99, landmarks: [[x + 15.0, 25.0]; 5] };
    // What the detection preview leaves on a row (the helper's detector is off in these tests).
    {
        let row = &mut harness.state_mut().state.rows[0];
        row.faces = vec![face(5.0), face(45.0)];
        row.faces_known = true;
        row.before = Some(preview(40, 30));
        row.revision += 1;
    }
    harness.run_steps(2);
    let _ = script.sent();
    harness.get_by_label("Face 2").click();
    harness.run_steps(2);
    assert_eq!(harness.state().state.rows[0].faces_off.iter().copied().collect::<Vec<_>>(), vec![1]);
    harness.get_by_label_contains("(1 switched off)");
    let given = script
        .sent()
        .into_iter()
        .filter_map(|c| match c {
            Command::Configure(config) => config.given_faces.clone(),
            _ => None,
        })
        .last()
        .expect("the engine got the configuration with the given faces");
    assert_eq!(given.get(&photo), Some(&[face(5.0)][..]), "only the face left on goes to the engine");
    // Switched on again: the photo is detected by the engine as usual.
    harness.get_by_label("Face 2").click();
    harness.run_steps(2);
    assert!(harness.state().state.rows[0].faces_off.is_empty());
    let configs: Vec<_> = script.sent().into_iter().filter_map(|c| if let Command::Configure(c) = c { Some(c) } else { None }).collect();
    assert!(configs.last().expect("configured again").given_faces.is_none());
}

#[test]
fn the_face_strip_shows_each_face_s_identity_and_its_own_strength_goes_to_the_engine() {
    use gpen_studio::identity::FaceIdentity;
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, photo) = one_queued_photo(dir.path(), some_weights(dir.path()));
    let face = |x: f32| Face { bbox: [x, 10.0, x + 30.0, 40.0], score: 0.99, landmarks: [[x + 15.0, 25.0]; 5] };
    {
        let app = &mut harness.state_mut().state;
        app.settings.run.identity_floor = Some(0.6);
        let row = &mut app.rows[0];
        row.faces = vec![face(5.0), face(45.0), face(85.0)];
        row.faces_known = true;
        row.faces_off.insert(1);
        row.before = Some(preview(120, 60));
        row.revision += 1;
    }
    harness.run_steps(2);
    let id = |similarity: f32, strength: f32, final_similarity: f32, below_floor: bool| FaceIdentity {
        asked_strength: 1.0,
        similarity,
        strength,
        final_similarity,
        below_floor,
        softened: strength < 1.0,
    };
    // The engine got faces 1 and 3 (face 2 is switched off): its two identities are theirs.
    script
        .events
        .send(EngineEvent::PhotoEnded {
            id: ID,
            outcome: Outcome::Restored {
                output: dir.path().join("out/grandma.png"),
                faces: 2,
                identity: vec![Some(id(0.41, 0.38, 0.62, true)), Some(id(0.88, 1.0, 0.88, false))],
            },
            after: Some(preview(120, 60)),
        })
        .unwrap();
    harness.run_steps(2);
    harness.get_by_label("identity 0.41 -> 0.62 (strength 0.38)");
    harness.get_by_label("identity 0.88");
    let row = &harness.state().state.rows[0];
    assert_eq!(row.identity.iter().map(|i| i.map(|i| i.similarity)).collect::<Vec<_>>(), vec![Some(0.41), None, Some(0.88)]);
    // Face 3 gets its own strength: the engine receives the kept faces with it.
    let _ = script.sent();
    harness.state_mut().handle(Action::FaceStrength(ID, 2, Some(0.5)));
    harness.run_steps(2);
    let given = script
        .sent()
        .into_iter()
        .filter_map(|c| if let Command::Configure(config) = c { config.given_faces.clone() } else { None })
        .last()
        .expect("configured with the face's strength");
    assert_eq!(given.get(&photo), Some(&[face(5.0), face(85.0)][..]));
    assert_eq!(given.strengths(&photo), Some(&[None, Some(0.5)][..]));
    harness.get_by_label("run's");
}

#[test]
fn the_settings_name_the_detector_and_mask_in_use_and_offer_the_add_ons() {
    let dir = tempfile::tempdir().unwrap();
    let (harness, _script) = window(settings(dir.path(), some_weights(dir.path())));
    // Nothing installed beside the generator: the built-in detector and the rectangle, named in full.
    harness.get_by_label("Faces found with MTCNN");
    harness.get_by_label("Pasted with the feathered rectangle (no face parser installed)");
    harness.get_by_label("RetinaFace-R50");
    harness.get_by_label("ParseNet-latest");
    harness.get_by_label("realesrnet_x2");
    harness.get_by_label("Upscale background");
    harness.get_by_label("ArcFace-IR-SE50");
    harness.get_by_label("Identity not measured (the identity network is not installed)");
}

#[test]
fn an_add_on_downloads_from_the_settings_without_touching_the_model() {
    let body = std::fs::read(common::golden().join("parsenet/weights.pth")).unwrap();
    let server = serve(body.clone(), vec![Behaviour::Serve]);
    let dir = tempfile::tempdir().unwrap();
    let addon = ModelEntry::addon(
        "ParseNet-latest",
        "ParseNet-latest.pth",
        &server.url,
        gpen_studio::weights::ModelKind::FaceParser,
        "GPEN's face parser (test copy)",
    );
    let source = ModelSource::new(dir.path().join("models"), Catalogue::new(vec![addon.clone()]));
    let weights = common::golden_weights();
    let state = AppState::with_model_source(settings(dir.path(), weights.clone()), source.clone());
    let (mut harness, script) = window_over(state);
    harness.run_steps(2);
    script.sent();
    harness.get_by_label("Download").click();
    step_until(&mut harness, Duration::from_secs(60), |h| matches!(download_state(h), DownloadState::Done { .. }));
    let path = source.store.path_of(&addon);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    // The golden's small parser is not the released one: its input size is the user's to give.
    let network = checksums(&source)["ParseNet-latest.pth"].network.clone().unwrap_or_default();
    assert!(network.starts_with("ParseNet(base_ch=16") && network.ends_with("input size not recorded"), "{network}");
    assert_eq!(harness.state().state.settings.run.weights, weights, "the generator stays selected");
    let last = harness.state().state.log.last().cloned().unwrap_or_default();
    assert!(last.contains("ParseNet-latest installed and verified"), "{last}");
    harness.get_by_label("installed");
    // The engine hears of it (auto picks the parser up from the next run).
    assert!(script.sent().iter().any(|c| matches!(c, Command::Configure(_))));
}

#[test]
fn between_runs_the_panel_shows_the_sr_tiles_the_selected_photo_would_get() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), common::golden_weights());
    s.run.upscale = Some(2);
    s.run.sr_weights = Some(common::golden().join("rrdbnet/x2.pth"));
    let (mut harness, script) = window(s);
    let photo = dir.path().join("scan.png");
    write_png(&photo, 800, 600);
    drop_paths(&mut harness, std::slice::from_ref(&photo));
    {
        let row = &mut harness.state_mut().state.rows[0];
        row.before = Some(Preview { image: image::RgbImage::new(400, 300), scale: 0.5 });
    }
    let gib = 1u64 << 30;
    // A small device: 0.25 GiB free leaves too little for the whole 800 x 600 photo (1036 B a pixel).
    script.events.send(EngineEvent::Memory(MemorySample::new("Fake GPU".into(), false, 16 * gib, gib / 4, 0, None))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.state().state.memory.live_tiles.is_none() {
        assert!(Instant::now() < deadline, "no live tile plan: {:?}", harness.state().state.memory.live);
        std::thread::sleep(Duration::from_millis(10));
        harness.step();
    }
    harness.run_steps(1);
    harness.get_by_label("Background SR tiles now");
    let tiles = harness.state().state.memory.live_tiles.clone().unwrap();
    assert!(tiles.starts_with("scan.png: tiles of ") && tiles.contains("B per pixel"), "{tiles}");
    // With room for it, the photo runs whole.
    script.events.send(EngineEvent::Memory(MemorySample::new("Fake GPU".into(), false, 16 * gib, 8 * gib, 0, None))).unwrap();
    harness.run_steps(3);
    let tiles = harness.state().state.memory.live_tiles.clone().unwrap();
    assert!(tiles.starts_with("scan.png: whole photo"), "{tiles}");
}

/// A photo with one face at known landmarks (what the detection preview leaves on a row), in a
/// window whose catalogue names the face tools' checkpoints (`installed`: copies of the golden
/// generator under their names; else downloadable from `url`).
fn face_tool_window(dir: &Path, installed: bool, url: &str) -> (Harness<'static, Studio>, Script, PathBuf, ModelSource) {
    let entries = ["GPEN-Colorization-1024", "GPEN-Inpainting-1024"]
        .map(|name| ModelEntry::downloadable(name, &format!("{name}.pth"), url, GOLDEN, "face tool checkpoint (test copy)"));
    let source = ModelSource::new(dir.join("models"), Catalogue::new(entries.to_vec()));
    if installed {
        for e in &entries {
            std::fs::create_dir_all(dir.join("models")).unwrap();
            std::fs::copy(common::golden_weights(), source.store.path_of(e)).unwrap();
        }
    }
    let photo = dir.join("grandma.png");
    write_png(&photo, 200, 200);
    let mut s = settings(dir, common::golden_weights());
    s.run.device = gpen_studio::device::DeviceChoice::Cpu;
    let (mut harness, script) = window_serving_asides(AppState::with_model_source(s, source.clone()));
    drop_paths(&mut harness, std::slice::from_ref(&photo));
    {
        let row = &mut harness.state_mut().state.rows[0];
        row.faces = vec![tool_face()];
        row.faces_known = true;
        row.before = Some(preview(100, 100));
        row.revision += 1;
    }
    harness.run_steps(2);
    (harness, script, photo, source)
}

fn tool_face() -> Face {
    Face {
        bbox: [60.0, 60.0, 140.0, 150.0],
        score: 0.99,
        landmarks: [[80.0, 90.0], [120.0, 90.0], [100.0, 112.0], [84.0, 132.0], [116.0, 132.0]],
    }
}

fn tool_status(harness: &Harness<'static, Studio>) -> ToolStatus {
    harness.state().state.face_tool.as_ref().expect("the face tool is open").status.clone()
}

fn step_until_tool(harness: &mut Harness<'static, Studio>, limit: Duration, done: impl Fn(&ToolStatus) -> bool) {
    let deadline = Instant::now() + limit;
    harness.run_steps(2);
    while !done(&tool_status(harness)) {
        assert!(Instant::now() < deadline, "timed out; the face tool is {:?}", tool_status(harness));
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.run_steps(4);
}

#[test]
fn a_face_brushed_in_the_window_is_inpainted_as_restore_aligned_inpaints_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, _script, photo, _source) = face_tool_window(dir.path(), true, "http://127.0.0.1:9/unused");
    harness.get_by_label("Inpaint…").click();
    step_until_tool(&mut harness, Duration::from_secs(30), |s| *s == ToolStatus::Ready);
    harness.get_by_label("Inpaint face 1 of grandma.png");
    harness.get_by_label_contains("0.0 % of the face marked");
    assert!(harness.get_by_label("Inpaint").accesskit_node().is_disabled(), "nothing brushed: nothing to fill in");
    harness.state_mut().state.face_tool.as_mut().unwrap().brush_radius = 4.0;
    // A stroke across the middle of the face, a quarter to three quarters of its width.
    let area = harness.get_by_label("Face to brush").rect();
    let at = |fx: f32| egui::pos2(area.left() + fx * area.width(), area.center().y);
    let button =
        |pos, pressed| egui::Event::PointerButton { pos, button: egui::PointerButton::Primary, pressed, modifiers: Default::default() };
    for event in [egui::Event::PointerMoved(at(0.25)), button(at(0.25), true)] {
        harness.input_mut().events.push(event);
    }
    harness.step();
    for fx in [0.4, 0.6, 0.75] {
        harness.input_mut().events.push(egui::Event::PointerMoved(at(fx)));
        harness.step();
    }
    harness.input_mut().events.push(button(at(0.75), false));
    harness.run_steps(2);
    {
        let mask = harness.state().state.face_tool.as_ref().unwrap().mask.clone().unwrap();
        assert_eq!(mask.dimensions(), (64, 64));
        for x in [17, 32, 46] {
            assert_eq!(mask.get_pixel(x, 32)[0], 255, "brushed at x {x}");
        }
        assert_eq!(mask.get_pixel(10, 32)[0], 0, "before the stroke");
        assert_eq!(mask.get_pixel(32, 40)[0], 0, "beyond the brush");
    }
    harness.get_by_label_contains("% of the face marked");
    harness.get_by_label("Inpaint").click();
    step_until_tool(&mut harness, Duration::from_secs(120), |s| matches!(s, ToolStatus::Done | ToolStatus::Failed(_)));
    assert_eq!(tool_status(&harness), ToolStatus::Done);
    harness.get_by_label_contains("Saved to");

    let tools = dir.path().join("out/face-tools");
    let (crop, mask) = {
        let tool = harness.state().state.face_tool.as_ref().unwrap();
        (tool.crop.clone().unwrap(), tool.mask.clone().unwrap())
    };
    // The face as a run aligns it, at the model's size.
    let pixels = common::rgb(&photo);
    let aligned = gpen_studio::align::align_face(&pixels, &tool_face().landmarks, 64, tch::Device::Cpu).unwrap();
    assert_eq!(crop, aligned.crop);
    assert_eq!(common::rgb(&tools.join("grandma_face01.png")), crop);
    assert_eq!(image::open(tools.join("grandma_face01_mask.png")).unwrap().to_luma8(), mask, "the strokes are the mask");
    let result = common::rgb(&tools.join("inpaint/grandma_face01.png"));
    assert_eq!(harness.state().state.face_tool.as_ref().unwrap().result.as_ref().unwrap().1, result);

    // The same face marked white where brushed (GPEN's inpainting input), through the CLI.
    let mut marked = crop.clone();
    for (p, m) in marked.pixels_mut().zip(mask.pixels()) {
        if m[0] > 127 {
            *p = image::Rgb([255, 255, 255]);
        }
    }
    let cli = dir.path().join("cli");
    std::fs::create_dir_all(&cli).unwrap();
    marked.save(cli.join("grandma_face01.png")).unwrap();
    let weights = dir.path().join("models/GPEN-Inpainting-1024.pth");
    let inpaint = |crop: &Path| {
        common::run_with_data(
            dir.path(),
            &[
                common::os("restore"),
                common::os("--device"),
                common::os("cpu"),
                common::os("--aligned"),
                common::os("--task"),
                common::os("inpaint"),
                common::os("--weights"),
                weights.as_os_str(),
                crop.as_os_str(),
                common::os("-o"),
                cli.join("out").as_os_str(),
            ],
        )
    };
    let out = inpaint(&cli.join("grandma_face01.png"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::rgb(&cli.join("out/grandma_face01.png")), result, "the window's inpainting is restore --aligned --task inpaint");
    // ... and the strokes matter: the unmarked face gives another result.
    crop.save(cli.join("unmarked.png")).unwrap();
    let plain = inpaint(&cli.join("unmarked.png"));
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    assert_ne!(common::rgb(&cli.join("out/unmarked.png")), result);
    assert_eq!(harness.state().state.settings.run.weights, common::golden_weights(), "the restoring model stays selected");
}

#[test]
fn colorizing_a_face_offers_the_missing_checkpoint_then_colorizes_without_touching_the_model() {
    let server = serve(golden_bytes(), vec![Behaviour::Serve]);
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, _photo, source) = face_tool_window(dir.path(), false, &server.url);
    script.sent();
    harness.get_by_label("Colorize").click();
    // A window takes a frame to size itself before it shows.
    harness.run_steps(4);
    assert_eq!(tool_status(&harness), ToolStatus::NeedsModel);
    harness.get_by_label_contains("GPEN-Colorization-1024 is not installed");
    harness.get_by_label("Download GPEN-Colorization-1024").click();
    // Installed, then aligned and colorized at once (colorizing needs nothing from the user).
    step_until_tool(&mut harness, Duration::from_secs(120), |s| matches!(s, ToolStatus::Done | ToolStatus::Failed(_)));
    assert_eq!(tool_status(&harness), ToolStatus::Done);
    let colorizer = source.store.path_of(source.catalogue.find("GPEN-Colorization-1024").unwrap());
    assert_eq!(std::fs::read(&colorizer).unwrap(), golden_bytes());
    let result = dir.path().join("out/face-tools/colorize/grandma_face01.png");
    assert_eq!(common::rgb(&result).dimensions(), (64, 64));
    assert!(!dir.path().join("out/face-tools/grandma_face01_mask.png").exists(), "colorizing takes no mask");
    assert_eq!(harness.state().state.settings.run.weights, common::golden_weights(), "the restoring model stays selected");
    assert!(set_models(&script.sent()).iter().all(|w| *w == common::golden_weights()), "the engine was never told to load the colorizer");
    harness.get_by_label("Colorize again");
    // Closing the window's tool leaves the photo as it was.
    harness.state_mut().state.face_tool = None;
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Colorize face 1").is_none());
}

#[test]
fn a_dropped_folder_names_results_as_the_command_line_does_and_skips_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let album = dir.path().join("album");
    write_png(&album.join("a/x.png"), 16, 12);
    write_png(&album.join("b/x.png"), 16, 12);
    write_png(&album.join("out/a/x.png"), 16, 12); // results of an earlier run
    let mut s = settings(dir.path(), some_weights(dir.path()));
    s.run.out_dir = album.join("out");
    let (mut harness, script) = window(s);
    drop_paths(&mut harness, std::slice::from_ref(&album));
    let sent = script.sent();
    let photos: Vec<gpen_studio::archive::Photo> = sent
        .iter()
        .filter_map(|c| if let Command::EnqueuePhotos(p) = c { Some(p.iter().map(|(_, p)| p.clone())) } else { None })
        .flatten()
        .collect();
    let keys = gpen_studio::archive::inputs::plan_outputs(&photos, Path::new("o"), "png");
    assert_eq!(keys, [PathBuf::from("o/a/x.png"), "o/b/x.png".into()], "{sent:?}");
}

/// The engine's thread dies mid-run (its channel closes with a photo in flight): the window shows
/// the run stopped and that photo failed with the reason, instead of "running" forever.
#[test]
fn a_closed_engine_channel_ends_the_run_as_failed_instead_of_running_forever() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, script, _) = one_queued_photo(dir.path(), some_weights(dir.path()));
    harness.get_by_label("Start").click();
    harness.run_steps(2);
    script.events.send(EngineEvent::PhotoStarted { id: ID }).unwrap();
    harness.run_steps(2);
    assert!(harness.state().state.run.running);
    assert_eq!(harness.state().state.rows[0].status, PhotoStatus::Detecting);
    drop(script);
    harness.run_steps(2);
    let state = &harness.state().state;
    assert!(!state.run.running, "still shown running after the engine is gone");
    assert_eq!(state.rows[0].status, PhotoStatus::Failed(gpen_studio::gui::state::ENGINE_GONE.into()));
    harness.get_by_label(&format!("Model error: {}", gpen_studio::gui::state::ENGINE_GONE));
}

/// One run on the device at a time: while the queue's run goes, the face tool aligns its face but
/// does not colorize it (its button waits, and says so); while the tool's job runs, Start waits.
#[test]
fn the_face_tool_and_a_run_never_hold_the_device_together() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, _script, _photo, _source) = face_tool_window(dir.path(), true, "http://127.0.0.1:9/unused");
    assert!(!harness.get_by_label("Start").accesskit_node().is_disabled(), "a photo waits and the model is there");
    harness.get_by_label("Colorize").click();
    // The frame that opens the tool hands the face to a helper to align; the result is read on a
    // later frame, when the queue's run has started.
    harness.step();
    assert!(harness.state().state.face_tool.is_some());
    harness.state_mut().state.run.running = true;
    step_until_tool(&mut harness, Duration::from_secs(30), |s| *s == ToolStatus::Ready);
    harness.run_steps(4);
    assert_eq!(tool_status(&harness), ToolStatus::Ready, "colorizing waits for the run");
    harness.get_by_label_contains("waits for the run to end");
    harness.state_mut().state.run.running = false;
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("waits for the run to end").is_none());
    harness.state_mut().state.face_tool.as_mut().unwrap().status = ToolStatus::Running;
    harness.run_steps(2);
    assert!(harness.get_by_label("Start").accesskit_node().is_disabled(), "Start waits for the face tool's job");
}
