//! What `restore` prints while the engine runs: a real engine run (fakes behind its traits) whose
//! free-memory reading wobbles by a few MiB at every sample, so the planner re-plans with new
//! arithmetic again and again while the batch stays the same — one plan line, not one per
//! wobble; every re-plan with -v; none with -q.

mod common;
use common::fakes::{GridDetector, grid_photos};
use gpen_studio::cli::output::{RunOutput, Verbosity};
use gpen_studio::config::{RunConfig, Workers};
use gpen_studio::detect::FaceDetector;
use gpen_studio::engine::memory::{MemoryProbe, MemorySample};
use gpen_studio::engine::memory_model::{MemoryModel, ModelSource};
use gpen_studio::engine::worker::{Command, Components, EngineEvent, spawn};
use gpen_studio::error::RunError;
use gpen_studio::restore::FaceRestorer;
use image::RgbImage;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// 22.4 GiB free, give or take up to 60 MiB from one sample to the next.
struct WobblingProbe {
    n: u64,
}

impl MemoryProbe for WobblingProbe {
    fn sample(&mut self) -> Result<MemorySample, gpen_studio::engine::memory::ProbeError> {
        self.n += 1;
        let free = 22 * GIB + 400 * MIB + (self.n * 7919 % 7) * 10 * MIB;
        Ok(MemorySample::new("Wobbling GPU".into(), false, 24 * GIB, free, 0, Some(0)))
    }
}

/// Identity restorer of 64 px crops that takes a little while per batch, like a device.
struct SlowIdentity;

impl FaceRestorer for SlowIdentity {
    fn size(&self) -> u32 {
        64
    }
    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        std::thread::sleep(Duration::from_millis(30));
        Ok(faces.iter().map(|f| (*f).clone()).collect())
    }
}

/// The engine's events for a run of `photos` photos of 3 faces each, to the end.
fn run_events(photos: usize) -> Vec<EngineEvent> {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let paths = grid_photos(input.path(), photos);
    let settings = RunConfig {
        out_dir: out.path().into(),
        monitor_interval: Duration::from_millis(10),
        preview_side: 0,
        max_batch: 4,
        cpu_max_batch: 4,
        workers: Workers::Fixed(1),
        ..RunConfig::default()
    };
    // The numbers: 0.3 GiB fixed, 5 MiB a face, so thousands fit and the cap decides.
    let model = || MemoryModel { fixed: 300 * MIB, per_face: 5 * MIB, source: ModelSource::Analytic };
    let components = Components {
        restorer: Box::new(|_, _| Ok(Box::new(SlowIdentity) as Box<dyn FaceRestorer>)),
        fallback: Box::new(|_, _| None),
        detector: Box::new(|_, _| Ok(Box::new(GridDetector { per_photo: 3 }) as Box<dyn FaceDetector + Send>)),
        upscaler: Box::new(|_, _| Ok(None)),
        masker: Box::new(|_, _, _| Ok(None)),
        identity: Box::new(|_, _| Ok(None)),
        probe: Box::new(|_| Box::new(WobblingProbe { n: 0 }) as Box<dyn MemoryProbe>),
        memory_model: Box::new(move |_, _, _| model()),
        calibrate: Box::new(move |_, _, _| Ok(model())),
    };
    let engine = spawn(settings, components, Box::new(|| {}));
    engine.send(Command::Enqueue(paths.iter().cloned().enumerate().map(|(i, p)| (i as u64, p)).collect()));
    engine.send(Command::Start);
    let mut events = Vec::new();
    loop {
        let e = engine.events.recv_timeout(Duration::from_secs(60)).expect("the run finishes");
        let done = matches!(e, EngineEvent::Finished(_));
        events.push(e);
        if done {
            engine.shutdown();
            return events;
        }
    }
}

/// The lines `restore`'s output prints for these events' plans, at `verbosity`.
fn plan_lines(events: &[EngineEvent], verbosity: Verbosity) -> Vec<String> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let mut out = RunOutput::new(events.len(), "photos", verbosity, false, Box::new(move |l| sink.lock().unwrap().push(l.to_string())));
    for e in events {
        if let EngineEvent::Recommendation { batch, reason } = e {
            out.batch_plan(*batch, reason);
        }
    }

    lines.lock().unwrap().clone()
}

#[test]
fn free_memory_that_wobbles_under_a_steady_batch_prints_one_plan_line() {
    let events = run_events(12);
    let plans: Vec<(usize, &String)> = events
        .iter()
        .filter_map(|e| if let EngineEvent::Recommendation { batch, reason } = e { Some((*batch, reason)) } else { None })
        .collect();
    // The premise: the engine re-planned several times, each with new arithmetic, same size.
    assert!(plans.len() >= 3, "the wobble must reach the planner: {plans:?}");
    assert!(plans.iter().all(|(b, _)| *b == 4), "{plans:?}");
    let normal = plan_lines(&events, Verbosity::Normal);
    assert_eq!(normal.len(), 1, "{normal:?}");
    assert!(normal[0].starts_with("batch 4: ") && normal[0].contains("5 MiB per face"), "{normal:?}");
    assert_eq!(plan_lines(&events, Verbosity::Verbose).len(), plans.len());
    assert!(plan_lines(&events, Verbosity::Quiet).is_empty());
}
