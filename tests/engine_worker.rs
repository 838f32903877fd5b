//! The worker thread and its channels, driven by fakes: a scripted memory probe and a restorer whose
//! "device" runs out of memory above a byte budget. What is promised: every face ends restored or
//! reported, out-of-memory halves the batch and the size grows back, a ratio change applies at the
//! next batch, cancel stops within one batch without partial output, a face that fails alone on the
//! GPU is restored on the CPU, and photos complete as soon as their faces are back.

mod common;
use common::fakes::GridDetector;
use common::*;
use crossbeam_channel::{Receiver, Sender};
use gpen_studio::config::{RunConfig, Workers};
use gpen_studio::detect::FaceDetector;
use gpen_studio::engine::memory::{MemoryProbe, MemorySample};
use gpen_studio::engine::memory_model::{MemoryModel, ModelSource};
use gpen_studio::engine::worker::{Command, Components, EngineEvent, EngineHandle, spawn};
use gpen_studio::error::RunError;
use gpen_studio::pipeline::Outcome;
use gpen_studio::restore::FaceRestorer;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const GIB: u64 = 1 << 30;

/// Free memory as scripted by the test.
struct ScriptedProbe {
    free: Arc<Mutex<u64>>,
}

impl MemoryProbe for ScriptedProbe {
    fn sample(&mut self) -> Result<MemorySample, gpen_studio::engine::memory::ProbeError> {
        let free = *self.free.lock().unwrap();
        Ok(MemorySample::new("Scripted GPU".into(), false, 16 * GIB, free, 0, Some(0)))
    }
}

/// Identity restorer of 64 px crops on a pretend device of `capacity` faces; logs every call.
/// With a gate, each call waits for a token from the test (so the test can act between batches).
struct FakeGpu {
    capacity: usize,
    calls: Arc<Mutex<Vec<usize>>>,
    gate: Option<(Sender<usize>, Receiver<()>)>,
}

impl FaceRestorer for FakeGpu {
    fn size(&self) -> u32 {
        64
    }
    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        if let Some((started, go)) = &self.gate {
            let _ = started.send(faces.len());
            let _ = go.recv_timeout(Duration::from_secs(20));
        }
        self.calls.lock().unwrap().push(faces.len());
        if faces.len() > self.capacity {
            return Err(RunError::OutOfMemory(format!("CUDA out of memory. Tried to allocate {} faces", faces.len())));
        }
        Ok(faces.iter().map(|f| (*f).clone()).collect())
    }
}

/// A face parser on the pretend device: out of memory for more than one face at a time, and
/// broken for every third face it is given alone.
struct FakeParser {
    calls: Arc<Mutex<usize>>,
}

impl gpen_studio::mask::FaceMasker for FakeParser {
    fn describe(&self) -> String {
        "fake parser".into()
    }
    fn masks(&self, faces: &[&RgbImage]) -> Result<Vec<Vec<f32>>, RunError> {
        if faces.len() > 1 {
            return Err(RunError::OutOfMemory("CUDA out of memory (parser)".into()));
        }
        let mut n = self.calls.lock().unwrap();
        *n += 1;
        if (*n).is_multiple_of(3) {
            return Err(RunError::Torch("parser broke".into()));
        }
        Ok(vec![vec![0.5; 64 * 64]])
    }
}

/// An identity network on the pretend device: records each call's size; with `broken`, out of
/// memory for more than one face (two embeddings) and failing for every face alone.
struct FakeIdentity {
    calls: Arc<Mutex<Vec<usize>>>,
    broken: bool,
}

impl gpen_studio::identity::FaceIdentifier for FakeIdentity {
    fn embed(&self, faces: &[&RgbImage]) -> Result<Vec<Vec<f32>>, gpen_studio::identity::IdentityError> {
        self.calls.lock().unwrap().push(faces.len());
        if self.broken {
            let e = if faces.len() > 2 {
                RunError::OutOfMemory("CUDA out of memory (identity)".into())
            } else {
                RunError::Torch("broke".into())
            };
            return Err(e.into());
        }
        // The mean level as an angle: the fake restorer returns each face unchanged, so every
        // pasted face is its original (similarity 1).
        Ok(faces
            .iter()
            .map(|f| {
                let a = f.pixels().map(|p| p[0] as f32).sum::<f32>() / (f.width() * f.height()) as f32 / 255.0;
                vec![a.cos(), a.sin()]
            })
            .collect())
    }
}

/// Doubles a photo by pixel repetition (a stand-in for RealESRNet ×2); records the thread of
/// each call. With a hold, the first call says it started and then keeps asking `stop` between
/// its "blocks", as the real network does, until the test releases it or `stop` says stop.
struct Doubler {
    threads: Arc<Mutex<Vec<String>>>,
    hold: Mutex<Option<SrHold>>,
}

/// The test's side of a held upscaling.
struct SrHold {
    started: Sender<()>,
    release: Receiver<()>,
    /// Set when `stop` said stop.
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

impl gpen_studio::upscale::PhotoUpscaler for Doubler {
    fn scale(&self) -> u32 {
        2
    }
    fn upscale(
        &self,
        image: &RgbImage,
        _: Option<gpen_studio::upscale::Tiles>,
        _: bool,
        stop: &mut gpen_studio::error::Interrupt<'_>,
    ) -> Result<RgbImage, RunError> {
        self.threads.lock().unwrap().push(std::thread::current().name().unwrap_or("").to_string());
        if let Some(hold) = self.hold.lock().unwrap().take() {
            let _ = hold.started.send(());
            // Released, or the test gone (disconnected): the photo finishes.
            while let Err(crossbeam_channel::TryRecvError::Empty) = hold.release.try_recv() {
                if stop() {
                    hold.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Err(RunError::Interrupted);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(image::imageops::resize(image, image.width() * 2, image.height() * 2, image::imageops::FilterType::Nearest))
    }
    fn bytes_per_input_pixel(&self) -> u64 {
        100
    }
}

struct Setup {
    free: u64,
    capacity: usize,
    per_photo: usize,
    gate: Option<(Sender<usize>, Receiver<()>)>,
    fallback: bool,
    workers: Workers,
    ram_budget: Option<u64>,
    parser: bool,
    upscale: bool,
    /// An identity network (`Some(broken)`), its calls recorded in the rig.
    identity: Option<bool>,
    /// The upscaler's first call held until released (needs `upscale`).
    sr_hold: Option<SrHold>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            free: 8 * GIB,
            capacity: 100,
            per_photo: 3,
            gate: None,
            fallback: false,
            workers: Workers::Fixed(1),
            ram_budget: None,
            parser: false,
            upscale: false,
            identity: None,
            sr_hold: None,
        }
    }
}

struct Rig {
    engine: EngineHandle,
    config: RunConfig,
    calls: Arc<Mutex<Vec<usize>>>,
    cpu_calls: Arc<Mutex<Vec<usize>>>,
    out: tempfile::TempDir,
    _input: tempfile::TempDir,
    photos: Vec<PathBuf>,
    /// The thread of every upscaler call, and how many upscalers were built.
    sr_threads: Arc<Mutex<Vec<String>>>,
    sr_builds: Arc<Mutex<usize>>,
    /// The size of every identity call.
    identity_calls: Arc<Mutex<Vec<usize>>>,
}

/// The memory model every test plans with: 1 GiB fixed + 1 GiB per face, so with 8 GiB free and
/// ratio 0.8 the plan is floor((6.4 - 1) / 1) = 5 faces.
fn model() -> MemoryModel {
    MemoryModel { fixed: GIB, per_face: GIB, source: ModelSource::Analytic }
}

fn rig(setup: Setup, photos: usize) -> Rig {
    let input = tempfile::tempdir().unwrap();
    let paths = common::fakes::grid_photos(input.path(), photos);
    let out = tempfile::tempdir().unwrap();
    let free = Arc::new(Mutex::new(setup.free));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let cpu_calls = Arc::new(Mutex::new(Vec::new()));
    let settings = RunConfig {
        out_dir: out.path().into(),
        monitor_interval: Duration::from_millis(20),
        preview_side: 128,
        // The fake restorer plays a GPU, while the device setting resolves to the CPU here.
        cpu_max_batch: 32,
        workers: setup.workers,
        ram_budget: setup.ram_budget,
        upscale: setup.upscale.then_some(2),
        // A run that upscales needs its SR weights file to exist (the engine resolves the choice
        // before loading); the fake upscaler below never reads it.
        sr_weights: setup.upscale.then(|| {
            let path = input.path().join("realesrnet_x2.pth");
            std::fs::write(&path, b"not read: the fake upscaler stands in").unwrap();
            path
        }),
        ..RunConfig::default()
    };
    let (probe_free, gpu_calls, fallback_calls) = (free, calls.clone(), cpu_calls.clone());
    let (capacity, per_photo, with_fallback, with_parser) = (setup.capacity, setup.per_photo, setup.fallback, setup.parser);
    let with_upscaler = setup.upscale;
    let (sr_threads, sr_builds) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(0)));
    let (up_threads, up_builds) = (sr_threads.clone(), sr_builds.clone());
    let sr_hold = Mutex::new(setup.sr_hold);
    let gate = Mutex::new(setup.gate);
    let identity_calls = Arc::new(Mutex::new(Vec::new()));
    let (id_calls, with_identity) = (identity_calls.clone(), setup.identity);
    let components = Components {
        restorer: Box::new(move |_, _| {
            Ok(Box::new(FakeGpu { capacity, calls: gpu_calls.clone(), gate: gate.lock().unwrap().take() }) as Box<dyn FaceRestorer>)
        }),
        fallback: Box::new(move |_, _| {
            with_fallback.then(|| Box::new(FakeGpu { capacity: 1, calls: fallback_calls.clone(), gate: None }) as Box<dyn FaceRestorer>)
        }),
        detector: Box::new(move |_, _| Ok(Box::new(GridDetector { per_photo }) as Box<dyn FaceDetector + Send>)),
        upscaler: Box::new(move |_, _| {
            *up_builds.lock().unwrap() += 1;
            let threads = up_threads.clone();
            let hold = Mutex::new(sr_hold.lock().unwrap().take());
            Ok(with_upscaler.then(|| Box::new(Doubler { threads, hold }) as Box<dyn gpen_studio::upscale::PhotoUpscaler + Send>))
        }),
        masker: Box::new(move |_, _, _| {
            Ok(with_parser.then(|| Box::new(FakeParser { calls: Arc::new(Mutex::new(0)) }) as Box<dyn gpen_studio::mask::FaceMasker>))
        }),
        identity: Box::new(move |_, _| {
            Ok(with_identity
                .map(|broken| Box::new(FakeIdentity { calls: id_calls.clone(), broken }) as Box<dyn gpen_studio::identity::FaceIdentifier>))
        }),
        probe: Box::new(move |_| Box::new(ScriptedProbe { free: probe_free.clone() }) as Box<dyn MemoryProbe>),
        memory_model: Box::new(|_, _, _| model()),
        calibrate: Box::new(|_, _, _| Ok(model())),
    };
    let engine = spawn(settings.clone(), components, Box::new(|| {}));
    Rig { engine, config: settings, calls, cpu_calls, out, _input: input, photos: paths, sr_threads, sr_builds, identity_calls }
}

/// Queues the rig's photos with ids 0, 1, ...
fn enqueue(rig: &Rig) {
    rig.engine.send(Command::Enqueue(rig.photos.iter().cloned().enumerate().map(|(i, p)| (i as u64, p)).collect()));
}

/// Collects events until the run finishes.
fn run_to_end(rig: &Rig) -> Vec<EngineEvent> {
    let mut events = Vec::new();
    loop {
        let e = rig.engine.events.recv_timeout(Duration::from_secs(60)).expect("the run finishes");
        let done = matches!(e, EngineEvent::Finished(_));
        events.push(e);
        if done {
            return events;
        }
    }
}

fn summary(events: &[EngineEvent]) -> gpen_studio::pipeline::Summary {
    events.iter().find_map(|e| if let EngineEvent::Finished(s) = e { Some(s.clone()) } else { None }).unwrap()
}

fn outputs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A rig whose first upscaling is held, the hold's ends for the test, and the run started.
fn rig_with_a_held_upscaling(photos: usize) -> (Rig, Receiver<()>, Sender<()>, Arc<std::sync::atomic::AtomicBool>) {
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (release, release_rx) = crossbeam_channel::unbounded();
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hold = SrHold { started: started_tx, release: release_rx, stopped: stopped.clone() };
    let rig = rig(Setup { upscale: true, workers: Workers::Fixed(1), sr_hold: Some(hold), ..Setup::default() }, photos);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    (rig, started, release, stopped)
}

#[test]
fn out_of_memory_halves_the_batch_keeps_every_face_and_grows_back() {
    // The plan says 5 faces, the device holds only 2.
    let rig = rig(Setup { capacity: 2, per_photo: 4, ..Setup::default() }, 6);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert_eq!((s.photos_restored, s.faces_restored, s.faces_failed), (6, 24, 0), "{s}");
    let recoveries: Vec<(usize, usize)> =
        events.iter().filter_map(|e| if let EngineEvent::OomRecovered { from, to } = e { Some((*from, *to)) } else { None }).collect();
    assert!(recoveries.starts_with(&[(5, 2)]), "{recoveries:?}");
    assert!(s.oom_events >= 2, "the grown-back size hits the limit again and is counted: {s}");
    let calls = rig.calls.lock().unwrap().clone();
    // After 3 successes at 2 the size doubles to 4 (over capacity, halved again): it grows back.
    assert!(calls.windows(4).any(|w| w == [2, 2, 2, 4]), "{calls:?}");
    assert_eq!(outputs(rig.out.path()).len(), 6);
}

#[test]
fn a_ratio_change_takes_effect_at_the_next_batch() {
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let (go_tx, go_rx) = crossbeam_channel::unbounded();
    let rig = rig(Setup { per_photo: 8, gate: Some((started_tx, go_rx)), ..Setup::default() }, 3);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(20)).unwrap(), 5, "0.8 x 8 GiB - 1 GiB fixed = 5 faces");
    // 0.5 x 8 GiB - 1 GiB = 3 faces from the next batch on.
    rig.engine.send(Command::Configure(Box::new(RunConfig { memory_ratio: 0.5, ..rig.config.clone() })));
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..20 {
        let _ = go_tx.send(());
    }
    let events = run_to_end(&rig);
    let calls = rig.calls.lock().unwrap().clone();
    assert_eq!(calls[0], 5);
    assert!(calls[1..].iter().all(|&n| n <= 3), "{calls:?}");
    assert_eq!(summary(&events).faces_restored, 24);
    let reasons: Vec<&String> =
        events.iter().filter_map(|e| if let EngineEvent::Recommendation { reason, .. } = e { Some(reason) } else { None }).collect();
    assert!(reasons.iter().any(|r| r.contains("0.50")), "{reasons:?}");
}

/// Cancels a run of `photos` photos of 2 faces while its first batch is on the "GPU": no other batch
/// starts, every photo ends once (restored or cancelled), and only finished photos are on disk.
fn cancel_mid_run(workers: Workers, photos: usize) {
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let (go_tx, go_rx) = crossbeam_channel::unbounded();
    let rig = rig(Setup { per_photo: 2, gate: Some((started_tx, go_rx)), workers, ..Setup::default() }, photos);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    started_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    rig.engine.send(Command::Cancel);
    std::thread::sleep(Duration::from_millis(100));
    go_tx.send(()).unwrap();
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert_eq!(rig.calls.lock().unwrap().len(), 1, "no batch starts after the cancel");
    assert!(s.photos_cancelled >= photos - 3, "{s}");
    assert_eq!(s.photos_restored + s.photos_cancelled, photos, "{s}");
    let ends = endings(&events);
    assert_eq!(ends.len(), photos);
    assert!(ends.values().all(|v| v.len() == 1), "one ending each: {ends:?}");
    let written = outputs(rig.out.path());
    assert_eq!(written.len(), s.photos_restored, "only finished photos exist: {written:?}");
    assert!(written.iter().all(|n| n.ends_with(".png")), "{written:?}");
    no_temporary_files(rig.out.path());
}

#[test]
fn cancel_stops_within_one_batch_and_writes_nothing_partial() {
    cancel_mid_run(Workers::Fixed(1), 10);
}

#[test]
fn a_face_that_fails_alone_on_the_gpu_is_restored_on_the_cpu() {
    // The "GPU" cannot hold even one face; the CPU copy can.
    let rig = rig(Setup { capacity: 0, per_photo: 2, fallback: true, ..Setup::default() }, 2);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert_eq!((s.faces_restored, s.faces_failed, s.cpu_fallbacks), (4, 0, 4), "{s}");
    let warnings = events.iter().filter(|e| matches!(e, EngineEvent::CpuFallback { .. })).count();
    assert_eq!(warnings, 4);
    assert_eq!(*rig.cpu_calls.lock().unwrap(), [1, 1, 1, 1]);
}

#[test]
fn a_face_the_parser_cannot_mask_is_pasted_with_the_rectangle_and_reported() {
    let rig = rig(Setup { parser: true, ..Setup::default() }, 2);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let fallbacks = events.iter().filter(|e| matches!(e, EngineEvent::MaskFallback { .. })).count();
    let s = summary(&events);
    // 6 faces: every batch's masks fail together (out of memory), then one by one every third.
    assert_eq!((fallbacks, s.mask_fallbacks), (2, 2), "{s}");
    assert_eq!((s.photos_restored, s.faces_restored, s.faces_failed), (2, 6, 0), "no face is lost for its mask: {s}");
    assert!(s.to_string().contains("2 faces pasted with the rectangle mask"), "{s}");
    assert_eq!(outputs(rig.out.path()).len(), 2);
}

#[test]
fn with_upscaling_faces_are_found_on_the_large_photo_and_reported_in_the_input_s_pixels() {
    let rig = rig(Setup { upscale: true, ..Setup::default() }, 2);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert_eq!((s.photos_restored, s.faces_restored), (2, 6), "{s}");
    assert!(events.iter().any(|e| matches!(e, EngineEvent::TilePlan { reason, .. } if reason.contains("whole photo"))));
    for e in &events {
        if let EngineEvent::FacesFound { faces, before, .. } = e {
            // The grid detector's faces on the 440 px photo, halved: the input's pixels.
            assert_eq!(faces[0].bbox, [7.5, 10.0, 22.5, 30.0]);
            let before = before.as_ref().unwrap();
            assert_eq!((before.image.width() as f32 / before.scale).round(), 220.0, "the preview maps input pixels");
        }
    }
    for name in outputs(rig.out.path()) {
        let out = image::open(rig.out.path().join(name)).unwrap();
        assert_eq!((out.width(), out.height()), (440, 440), "the result is the upscaled photo");
    }
}

/// The upscaler is a stage of the engine's own thread, the one that runs GPEN (the device's one
/// owner; on the CPU the thread with every intra-op thread): built once however many workers
/// detect, every photo upscaled there, then searched by the workers.
#[test]
fn the_upscaler_runs_once_built_on_the_engine_s_thread_while_workers_detect() {
    let rig = rig(Setup { upscale: true, workers: Workers::Fixed(3), ..Setup::default() }, 4);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let s = summary(&run_to_end(&rig));
    assert_eq!((s.photos_restored, s.faces_restored, s.workers), (4, 12, 3 + 1), "{s}");
    assert_eq!(*rig.sr_builds.lock().unwrap(), 1, "one upscaler for the run");
    assert_eq!(*rig.sr_threads.lock().unwrap(), vec!["gpen-worker"; 4], "every photo upscaled on the engine's thread");
    assert!(s.times.upscale > Duration::ZERO && s.times.detect > Duration::ZERO, "{:?}", s.times);
}

/// A cancel during a photo's super-resolution stops it between the network's blocks: the engine
/// takes commands there. (Without that, the held upscaling below would never end: the cancel would
/// wait in the channel for it.)
#[test]
fn a_cancel_stops_the_upscaler_between_its_blocks() {
    let (rig, started, _release, stopped) = rig_with_a_held_upscaling(3);
    started.recv().expect("the first photo is upscaled");
    rig.engine.send(Command::Cancel);
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert!(stopped.load(std::sync::atomic::Ordering::SeqCst), "the upscaler was told to stop");
    assert_eq!((s.photos_restored, s.photos_cancelled), (0, 3), "{s}");
    assert_eq!(events.iter().filter(|e| matches!(e, EngineEvent::PhotoEnded { .. })).count(), 3);
    assert!(outputs(rig.out.path()).is_empty(), "nothing written");
}

/// A pause during super-resolution holds it between blocks (the window shows it paused at once);
/// resuming finishes the same photo.
#[test]
fn a_pause_waits_between_the_upscaler_s_blocks_and_resume_goes_on() {
    let (rig, started, release, stopped) = rig_with_a_held_upscaling(1);
    started.recv().expect("the photo is upscaled");
    rig.engine.send(Command::Pause);
    // Paused is said while the upscaling is still held: it cannot end before `release`.
    let mut events = Vec::new();
    loop {
        let e = rig.engine.events.recv_timeout(Duration::from_secs(60)).expect("paused during the upscaling");
        let paused = matches!(e, EngineEvent::Paused);
        events.push(e);
        if paused {
            break;
        }
    }
    rig.engine.send(Command::Resume);
    release.send(()).unwrap();
    events.extend(run_to_end(&rig));
    let s = summary(&events);
    assert!(!stopped.load(std::sync::atomic::Ordering::SeqCst));
    assert!(events.iter().any(|e| matches!(e, EngineEvent::Resumed)));
    assert_eq!((s.photos_restored, s.photos_cancelled), (1, 0), "{s}");
    assert_eq!(outputs(rig.out.path()).len(), 1);
}

/// Cancelling while photos wait for the upscaler ends every photo, written or cancelled.
#[test]
fn a_run_cancelled_while_photos_wait_for_the_upscaler_ends_them_all() {
    let rig = rig(Setup { upscale: true, workers: Workers::Fixed(2), ..Setup::default() }, 6);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    rig.engine.send(Command::Cancel);
    let events = run_to_end(&rig);
    let ended = events.iter().filter(|e| matches!(e, EngineEvent::PhotoEnded { .. })).count();
    let s = summary(&events);
    assert_eq!(ended, 6, "every photo ends: {s}");
    assert_eq!(s.photos_restored + s.photos_cancelled, 6, "{s}");
    assert_eq!(outputs(rig.out.path()).len(), s.photos_restored, "only restored photos are written");
}

#[test]
fn without_a_fallback_every_face_is_reported_failed_not_dropped() {
    let rig = rig(Setup { capacity: 0, per_photo: 2, ..Setup::default() }, 2);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert_eq!((s.faces_restored, s.faces_failed, s.photos_failed), (0, 4, 2), "{s}");
    let face_failures = events.iter().filter(|e| matches!(e, EngineEvent::FaceFailed { .. })).count();
    assert_eq!(face_failures, 4);
    assert!(outputs(rig.out.path()).is_empty(), "a photo with a lost face is not written");
}

#[test]
fn every_face_s_identity_is_measured_in_one_call_a_batch_and_ends_in_its_photo_s_outcome() {
    // 3 faces a photo, batches of 5 faces: each batch's faces in one call of two embeddings each.
    let rig = rig(Setup { identity: Some(false), ..Setup::default() }, 3);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let mut measured = 0;
    for e in &events {
        if let EngineEvent::PhotoEnded { outcome: Outcome::Restored { faces, identity, .. }, .. } = e {
            assert_eq!(identity.len(), *faces);
            for id in identity {
                let id = id.expect("every face measured");
                assert!(id.similarity > 0.9999 && !id.softened && id.strength == 1.0, "{id:?}");
                measured += 1;
            }
        }
    }
    assert_eq!(measured, 9);
    let calls = rig.identity_calls.lock().unwrap().clone();
    let batches = rig.calls.lock().unwrap().clone();
    assert_eq!(calls, batches.iter().map(|n| 2 * n).collect::<Vec<_>>(), "one identity call per GPEN batch");
    let s = summary(&events);
    assert_eq!((s.faces_measured, s.faces_below_floor, s.identity_embeddings), (9, 0, 18), "{s:?}");
}

#[test]
fn a_face_whose_identity_cannot_be_measured_is_pasted_as_restored_and_reported() {
    let rig = rig(Setup { identity: Some(true), per_photo: 2, ..Setup::default() }, 2);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert_eq!((s.photos_restored, s.faces_restored, s.identity_failures), (2, 4, 4), "{s}");
    let unmeasured = events.iter().filter(|e| matches!(e, EngineEvent::IdentityUnmeasured { .. })).count();
    assert_eq!(unmeasured, 4);
    assert!(s.to_string().contains("4 faces' identity could not be measured"), "{s}");
    assert_eq!(outputs(rig.out.path()).len(), 2, "both photos are written");
    // The batch out of memory, then each face alone.
    let calls = rig.identity_calls.lock().unwrap().clone();
    assert!(calls.contains(&2) && calls.iter().any(|&n| n > 2), "{calls:?}");
}

#[test]
fn photos_complete_as_soon_as_their_faces_are_back_with_previews_and_progress() {
    // 3 faces per photo, batches of 5: photo 0 completes in the first batch, photo 1 in the second.
    let rig = rig(Setup::default(), 4);
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let order: Vec<u64> = events
        .iter()
        .filter_map(|e| if let EngineEvent::PhotoEnded { id, outcome: Outcome::Restored { .. }, .. } = e { Some(*id) } else { None })
        .collect();
    assert_eq!(order, [0, 1, 2, 3]);
    let first_done = events.iter().position(|e| matches!(e, EngineEvent::PhotoEnded { outcome: Outcome::Restored { .. }, .. })).unwrap();
    let found_before: usize = events[..first_done].iter().filter(|e| matches!(e, EngineEvent::FacesFound { .. })).count();
    assert!(found_before < 4, "photo 0 is written before every photo is even read");
    for e in &events {
        if let EngineEvent::PhotoEnded { outcome: Outcome::Restored { .. }, after, .. } = e {
            let after = after.as_ref().expect("a preview of the result");
            assert!(after.image.width() <= 128 && after.image.height() <= 128);
        }
    }
    let last = events.iter().rev().find_map(|e| if let EngineEvent::Progress(p) = e { Some(p.clone()) } else { None }).unwrap();
    assert_eq!((last.photos_done, last.photos_total, last.faces_done, last.faces_total), (4, 4, 12, 12));
    assert!(events.iter().any(|e| matches!(e, EngineEvent::Memory(_))), "memory samples are reported");
}

#[test]
fn engine_restores_real_photos_with_the_golden_model() {
    let out = tempfile::tempdir().unwrap();
    let settings = RunConfig {
        weights: golden_weights(),
        device: gpen_studio::device::DeviceChoice::Cpu,
        out_dir: out.path().into(),
        monitor_interval: Duration::from_millis(200),
        ..RunConfig::default()
    };
    let engine = spawn(settings, Components::real(), Box::new(|| {}));
    let photos = repo_root().join("../shared/photos");
    engine.send(Command::Enqueue(vec![(0, photos.join("solvay_1927.png")), (1, photos.join("astronaut.png"))]));
    engine.send(Command::Start);
    let mut finished = None;
    let mut recommendation = None;
    while finished.is_none() {
        match engine.events.recv_timeout(Duration::from_secs(120)).expect("the run finishes") {
            EngineEvent::Finished(s) => finished = Some(s),
            EngineEvent::Recommendation { batch, reason } => recommendation = Some((batch, reason)),
            EngineEvent::ModelError(e) => panic!("{e}"),
            _ => {}
        }
    }
    let s = finished.unwrap();
    assert_eq!((s.photos_restored, s.faces_restored, s.faces_failed), (2, 30, 0), "{s}");
    let (batch, reason) = recommendation.expect("a batch recommendation with its reason");
    assert!(batch >= 1 && reason.contains("free"), "{batch}: {reason}");
    assert_eq!(outputs(out.path()), ["astronaut.png", "solvay_1927.png"]);
    engine.shutdown();
}

/// Every photo's terminal events, by id.
fn endings(events: &[EngineEvent]) -> std::collections::BTreeMap<u64, Vec<&'static str>> {
    let mut m = std::collections::BTreeMap::<u64, Vec<&'static str>>::new();
    for e in events {
        let (id, what) = match e {
            EngineEvent::PhotoEnded { id, outcome, .. } => (
                *id,
                match outcome {
                    Outcome::Restored { .. } => "done",
                    Outcome::NoFaces { .. } => "no faces",
                    Outcome::AlreadyDone { .. } => "skipped",
                    Outcome::Failed { .. } => "failed",
                    Outcome::Cancelled => "cancelled",
                },
            ),
            _ => continue,
        };
        m.entry(id).or_default().push(what);
    }
    m
}

fn no_temporary_files(dir: &Path) {
    let names = outputs(dir);
    assert!(names.iter().all(|n| !n.starts_with('.')), "temporary files left: {names:?}");
}

#[test]
fn staged_workers_write_the_same_files_as_one_thread() {
    let one = rig(Setup { per_photo: 5, ..Setup::default() }, 8);
    enqueue(&one);
    one.engine.send(Command::Start);
    let sequential = summary(&run_to_end(&one));
    let many = rig(Setup { per_photo: 5, workers: Workers::Fixed(3), ..Setup::default() }, 8);
    enqueue(&many);
    many.engine.send(Command::Start);
    let staged = summary(&run_to_end(&many));
    assert_eq!((sequential.photos_restored, staged.photos_restored), (8, 8));
    assert_eq!((sequential.workers, staged.workers), (0, 3 + 1), "3 detection workers and 1 writer ran");
    assert_same_files(one.out.path(), many.out.path(), 8, "--workers 1 and 3");
}

#[test]
fn every_photo_ends_once_with_a_broken_detector_an_oom_and_a_failed_write_in_one_run() {
    // The plan says 5 faces a batch, the device holds 2: batches run out of memory and are split.
    let rig = rig(Setup { capacity: 2, per_photo: 3, workers: Workers::Fixed(3), ..Setup::default() }, 8);
    // Photo 2 breaks the detector; photo 5's result cannot be written (a folder has its name).
    RgbImage::from_pixel(230, 220, image::Rgb([9, 9, 9])).save(&rig.photos[2]).unwrap();
    let blocker = rig.out.path().join("photo05.png");
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("keep"), b"x").unwrap();
    rig.engine.send(Command::Configure(Box::new(RunConfig { overwrite: true, ..rig.config.clone() })));
    // The caller's ids are the ids of every event.
    rig.engine.send(Command::Enqueue(rig.photos.iter().cloned().enumerate().map(|(i, p)| (100 + i as u64, p)).collect()));
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let s = summary(&events);
    let ends = endings(&events);
    assert_eq!(ends.keys().copied().collect::<Vec<_>>(), (100..108).collect::<Vec<_>>());
    for (id, what) in &ends {
        let want: &[&str] = if *id == 102 || *id == 105 { &["failed"] } else { &["done"] };
        assert_eq!(what.as_slice(), want, "photo {id}");
    }
    assert_eq!((s.photos_restored, s.photos_failed, s.faces_restored, s.faces_failed), (6, 2, 18, 0), "{s}");
    assert!(s.oom_events >= 1, "{s}");
    let errors: Vec<String> = events
        .iter()
        .filter_map(|e| {
            if let EngineEvent::PhotoEnded { outcome: Outcome::Failed { error, .. }, .. } = e { Some(error.to_string()) } else { None }
        })
        .collect();
    assert!(errors.iter().any(|e| e.contains("face detection failed")), "{errors:?}");
    let mut written = outputs(rig.out.path());
    written.retain(|n| n != "photo05.png");
    assert_eq!(written, ["photo00.png", "photo01.png", "photo03.png", "photo04.png", "photo06.png", "photo07.png"]);
    no_temporary_files(rig.out.path());
    assert_eq!(std::fs::read_dir(&blocker).unwrap().count(), 1, "the folder in the way is untouched");
}

#[test]
fn cancel_in_a_staged_run_stops_within_one_batch_and_writes_nothing_partial() {
    cancel_mid_run(Workers::Fixed(3), 12);
}

#[test]
fn a_tiny_ram_budget_keeps_one_photo_in_flight_and_a_large_one_many() {
    let tiny = rig(Setup { workers: Workers::Fixed(3), ram_budget: Some(1), ..Setup::default() }, 6);
    enqueue(&tiny);
    tiny.engine.send(Command::Start);
    let s = summary(&run_to_end(&tiny));
    assert_eq!(s.photos_restored, 6, "{s}");
    assert_eq!(s.peak_photos_in_flight, 1, "each photo waits for the one before to be written");
    assert_eq!(s.ram_budget, 1);

    let large = rig(Setup { workers: Workers::Fixed(3), ram_budget: Some(GIB), ..Setup::default() }, 6);
    enqueue(&large);
    large.engine.send(Command::Start);
    let s = summary(&run_to_end(&large));
    assert_eq!(s.photos_restored, 6, "{s}");
    assert!(s.peak_photos_in_flight > 1, "{s:?}");
    // 220 x 220 px photos: 22 bytes a pixel kept, plus MTCNN's working memory while detecting.
    assert!(s.peak_charged_bytes >= 2 * 220 * 220 * 22 && s.peak_charged_bytes <= GIB, "{s:?}");
}

/// A bug in the engine (here: the restorer's loader panics) ends the run with a typed error that
/// names the panic, and a `Finished`: a front end never waits forever for a dead engine.
#[test]
fn a_panic_in_the_engine_ends_the_run_with_a_crash_error() {
    let out = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let photo = input.path().join("p.png");
    image::RgbImage::new(64, 48).save(&photo).unwrap();
    let components = Components {
        restorer: Box::new(|_, _| panic!("boom in the loader")),
        probe: Box::new(|_| Box::new(ScriptedProbe { free: Arc::new(Mutex::new(8 << 30)) }) as Box<dyn MemoryProbe>),
        ..Components::real()
    };
    let settings = RunConfig { out_dir: out.path().into(), ..RunConfig::default() };
    let engine = spawn(settings, components, Box::new(|| {}));
    engine.send(Command::Enqueue(vec![(0, photo)]));
    engine.send(Command::Start);
    let mut crash = None;
    loop {
        match engine.events.recv_timeout(Duration::from_secs(60)).expect("an event, then Finished") {
            EngineEvent::ModelError(e) => crash = Some(e),
            EngineEvent::Finished(_) => break,
            _ => {}
        }
    }
    let crash = crash.expect("a model error before Finished");
    assert!(matches!(crash, gpen_studio::error::SetupError::Crashed(_)), "{crash:?}");
    assert!(crash.to_string().contains("boom in the loader"), "{crash}");
    assert!(!crash.is_usage(), "a crash is not the user's mistake");
    // The thread is gone: its channel closes after the last event.
    assert!(engine.events.recv_timeout(Duration::from_secs(60)).is_err());
}

/// A reader that falls behind (a minimised window) gets every event, but past the backlog without
/// the previews, so a long run cannot pile up a preview of every photo in memory.
#[test]
fn events_past_the_unread_backlog_go_without_their_previews() {
    use gpen_studio::engine::worker::{PREVIEW_BACKLOG, Preview, lighter_when_behind};
    let preview = || Some(Preview { image: RgbImage::new(8, 6), scale: 0.5 });
    let ended = || EngineEvent::PhotoEnded {
        id: 3,
        outcome: Outcome::Restored { output: "o/x.png".into(), faces: 1, identity: vec![None] },
        after: preview(),
    };
    let found = || EngineEvent::FacesFound { id: 3, faces: Vec::new(), before: preview() };
    for (event, waiting, kept) in [
        (ended(), PREVIEW_BACKLOG - 1, true),
        (ended(), PREVIEW_BACKLOG, false),
        (found(), 0, true),
        (found(), 10 * PREVIEW_BACKLOG, false),
    ] {
        match lighter_when_behind(event, waiting) {
            EngineEvent::PhotoEnded { id, outcome: Outcome::Restored { faces: 1, .. }, after } => {
                assert_eq!((id, after.is_some()), (3, kept))
            }
            EngineEvent::FacesFound { id, before, .. } => assert_eq!((id, before.is_some()), (3, kept)),
            other => panic!("the event itself changed: {other:?}"),
        }
    }
    assert!(matches!(lighter_when_behind(EngineEvent::Paused, 10 * PREVIEW_BACKLOG), EngineEvent::Paused));
}

/// The window's face tools run aside on the window's engine (one owner of the device): an aside run
/// waits while the queue's run holds the device, its events go only to its own listener, and the
/// engine's queue and settings are as they were after it.
#[test]
fn an_aside_run_waits_for_the_queue_s_run_and_leaves_the_engine_s_queue_and_settings_alone() {
    use gpen_studio::archive::Photo;
    use gpen_studio::engine::worker::AsideRun;
    let (started_tx, started_rx) = crossbeam_channel::unbounded();
    let (go_tx, go_rx) = crossbeam_channel::unbounded();
    let rig = rig(Setup { per_photo: 2, gate: Some((started_tx, go_rx)), ..Setup::default() }, 3);
    let aside_out = tempfile::tempdir().unwrap();
    let aside_config = RunConfig { out_dir: aside_out.path().into(), ..rig.config.clone() };
    enqueue(&rig);
    rig.engine.send(Command::Start);
    started_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let (aside_tx, aside_rx) = crossbeam_channel::unbounded();
    let photos = vec![Photo::direct(rig.photos[0].clone())];
    rig.engine.send(Command::RunAside(Box::new(AsideRun { config: aside_config.clone(), photos, events: aside_tx })));
    std::thread::sleep(Duration::from_millis(100));
    assert!(aside_rx.is_empty(), "nothing of the aside run happens while the queue's batch is on the device");
    for _ in 0..50 {
        let _ = go_tx.send(());
    }
    let events = run_to_end(&rig);
    assert_eq!(summary(&events).photos_restored, 3);
    let mut aside_events = Vec::new();
    loop {
        let e = aside_rx.recv_timeout(Duration::from_secs(60)).expect("the aside run finishes");
        let done = matches!(e, EngineEvent::Finished(_));
        aside_events.push(e);
        if done {
            break;
        }
    }
    assert_eq!(summary(&aside_events).photos_restored, 1);
    let aside_outputs: Vec<&PathBuf> =
        aside_events.iter().filter_map(|e| if let EngineEvent::PhotoEnded { outcome, .. } = e { outcome.output() } else { None }).collect();
    assert!(aside_outputs.len() == 1 && aside_outputs[0].starts_with(aside_out.path()), "{aside_outputs:?}");
    assert!(
        events.iter().all(
            |e| !matches!(e, EngineEvent::PhotoEnded { outcome, .. } if outcome.output().is_some_and(|o| o.starts_with(aside_out.path())))
        ),
        "the aside run's photo never reaches the engine's listener"
    );
    assert_eq!((outputs(rig.out.path()).len(), outputs(aside_out.path()).len()), (3, 1));

    // Idle with photos queued: an aside run restores only its own photo, and the queue then runs
    // with the engine's own settings.
    rig.engine.send(Command::Enqueue(rig.photos.iter().cloned().enumerate().map(|(i, p)| (10 + i as u64, p)).collect()));
    let end =
        gpen_studio::engine::driver::run_aside(&rig.engine.commands, aside_config, vec![Photo::direct(rig.photos[1].clone())], |_| {});
    assert!(end.setup_error.is_none(), "{:?}", end.setup_error);
    assert_eq!((end.summary.photos_restored, end.summary.photos_already_done), (1, 0), "{}", end.summary);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    assert_eq!(endings(&events).keys().copied().collect::<Vec<_>>(), vec![10, 11, 12]);
    assert!(
        events.iter().all(|e| match e {
            EngineEvent::PhotoEnded { outcome, .. } => outcome.output().is_some_and(|o| o.starts_with(rig.out.path())),
            _ => true,
        }),
        "the queue's photos go to the engine's own output folder"
    );
    assert_eq!(outputs(aside_out.path()).len(), 2);
}

/// `upscale` runs through the engine in its upscale-only mode: no generator is loaded, no face is
/// searched for, and every photo is written at the upscaler's scale.
#[test]
fn a_run_that_only_upscales_loads_no_generator_and_writes_every_photo_upscaled() {
    let rig = rig(Setup { upscale: true, ..Setup::default() }, 3);
    rig.engine.send(Command::Configure(Box::new(RunConfig { upscale_only: true, ..rig.config.clone() })));
    enqueue(&rig);
    rig.engine.send(Command::Start);
    let events = run_to_end(&rig);
    let s = summary(&events);
    assert_eq!((s.photos_without_faces, s.faces_restored, s.photos_failed), (3, 0, 0), "{s}");
    assert!(rig.calls.lock().unwrap().is_empty(), "no batch ran");
    assert!(!events.iter().any(|e| matches!(e, EngineEvent::ModelLoaded { .. })), "no generator was loaded");
    for photo in &rig.photos {
        let (w, h) = image::image_dimensions(photo).unwrap();
        let output = rig.out.path().join(photo.file_name().unwrap());
        assert_eq!(image::image_dimensions(&output).unwrap(), (2 * w, 2 * h), "{}", output.display());
    }
}
