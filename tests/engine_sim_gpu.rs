//! Batch planning on a simulated CUDA device (tests/common/sim_gpu.rs): libtorch's caching allocator
//! keeps its reservation after a batch and NVML counts it as used, so a planner that only looks at
//! NVML's free memory would shrink the batch toward 1 after the first batch. What is promised: with no
//! competitor the batch stays at its first plan; a competitor taking memory shrinks the next batch at
//! once, out of memory is recovered with no face lost, the batch grows back when the competitor
//! leaves, and our peak stays within the ratio of what was available at the start.

mod common;
use common::fakes::{GridDetector, grid_photos};
use common::sim_gpu::{GIB, SimGpu};
use gpen_studio::config::{RunConfig, Workers};
use gpen_studio::detect::FaceDetector;
use gpen_studio::engine::memory_model::{MemoryModel, ModelSource};
use gpen_studio::engine::worker::{Command, Components, EngineEvent, spawn};
use gpen_studio::pipeline::Summary;
use std::time::Duration;

const WEIGHTS: u64 = GIB;
const WORKSPACE: u64 = GIB / 2;
const PER_FACE: u64 = GIB / 4;
const TOTAL: u64 = 24 * GIB;
const RATIO: f64 = 0.5;
const FACES_PER_PHOTO: usize = 8;

/// Runs `photos` photos of 8 faces through the engine on `gpu`; returns the events.
fn run(gpu: &SimGpu, photos: usize) -> Vec<EngineEvent> {
    run_with(gpu, photos, true)
}

/// [`run`], with the planner seeing our reservation (`held`) or NVML's free memory alone.
fn run_with(gpu: &SimGpu, photos: usize, held: bool) -> Vec<EngineEvent> {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let paths = grid_photos(input.path(), photos);
    let config = RunConfig {
        out_dir: out.path().into(),
        memory_ratio: RATIO,
        // The simulated GPU plays CUDA while the device setting resolves to the CPU here.
        cpu_max_batch: 32,
        max_batch: 32,
        workers: Workers::Fixed(1),
        preview_side: 0,
        // Every batch decision reads the device afresh.
        monitor_interval: Duration::from_millis(1),
        ..RunConfig::default()
    };
    let (for_restorer, for_probe) = (gpu.clone(), gpu.clone());
    let components = Components {
        restorer: Box::new(move |_, _| for_restorer.restorer(WEIGHTS, WORKSPACE, PER_FACE)),
        fallback: Box::new(|_, _| None),
        detector: Box::new(|_, _| Ok(Box::new(GridDetector { per_photo: FACES_PER_PHOTO }) as Box<dyn FaceDetector + Send>)),
        upscaler: Box::new(|_, _| Ok(None)),
        masker: Box::new(|_, _, _| Ok(None)),
        identity: Box::new(|_, _| Ok(None)),
        probe: Box::new(move |_| if held { for_probe.probe() } else { for_probe.probe_free_only() }),
        memory_model: Box::new(|_, _, _| MemoryModel { fixed: WEIGHTS + WORKSPACE, per_face: PER_FACE, source: ModelSource::Analytic }),
        calibrate: Box::new(|_, _, _| Err(gpen_studio::error::SetupError::Calibration("not simulated".into()))),
    };
    let engine = spawn(config, components, Box::new(|| {}));
    engine.send(Command::Enqueue(paths.into_iter().enumerate().map(|(i, p)| (i as u64, p)).collect()));
    engine.send(Command::Start);
    let mut events = Vec::new();
    loop {
        let e = engine.events.recv_timeout(Duration::from_secs(120)).expect("the run finishes");
        let done = matches!(e, EngineEvent::Finished(_));
        events.push(e);
        if done {
            return events;
        }
    }
}

fn summary(events: &[EngineEvent]) -> Summary {
    events.iter().find_map(|e| if let EngineEvent::Finished(s) = e { Some(s.clone()) } else { None }).unwrap()
}

/// (0.5 × 24 GiB − 1.5 GiB fixed) ÷ 0.25 GiB = 42 → 32 (max batch).
const FIRST_PLAN: usize = 32;

#[test]
fn without_a_competitor_the_batch_stays_at_its_first_plan() {
    let gpu = SimGpu::new(TOTAL, vec![]);
    let events = run(&gpu, 200);
    let s = summary(&events);
    assert_eq!((s.faces_restored, s.faces_failed, s.oom_events), (1600, 0, 0), "{s}");
    let calls: Vec<usize> = gpu.state().calls.iter().map(|c| c.0).collect();
    assert_eq!(calls.len(), 50);
    assert!(calls.iter().all(|&n| n == FIRST_PLAN), "the batch collapsed: {calls:?}");
    // The reason names what our allocator holds, which NVML counts as used.
    let reasons: Vec<&String> =
        events.iter().filter_map(|e| if let EngineEvent::Recommendation { reason, .. } = e { Some(reason) } else { None }).collect();
    assert!(reasons.iter().any(|r| r.contains("held by gpen-studio")), "{reasons:?}");
    let peak = gpu.state().peak_reserved;
    assert!(peak as f64 <= RATIO * TOTAL as f64 * 1.05, "peak {peak} over the budget");
}

#[test]
fn a_competitor_shrinks_the_batch_at_once_and_the_batch_grows_back_when_it_leaves() {
    // 60 % of the device is taken before call 10 and given back before call 30.
    let gpu = SimGpu::new(TOTAL, vec![(10, TOTAL * 6 / 10), (30, 0)]);
    let events = run(&gpu, 200);
    let s = summary(&events);
    assert_eq!((s.faces_restored, s.faces_failed), (1600, 0), "no face lost: {s}");
    assert!(s.oom_events <= 1, "{s}");
    let calls: Vec<(usize, bool)> = gpu.state().calls.clone();
    let sizes: Vec<usize> = calls.iter().filter(|c| !c.1).map(|c| c.0).collect();
    assert!(sizes[..9].iter().all(|&n| n == FIRST_PLAN), "{sizes:?}");
    // The competitor is seen at call 10's decision at the latest: (0.5 × (free + held) − 1.5) ÷ 0.25.
    let during = &calls[11..29];
    assert!(during.iter().all(|c| c.0 < FIRST_PLAN), "the batch did not shrink: {calls:?}");
    let last_full = calls.iter().rposition(|c| c.0 == FIRST_PLAN && !c.1).unwrap();
    assert!(last_full > 30, "the batch did not grow back: {calls:?}");
    let peak = gpu.state().peak_reserved;
    assert!(peak as f64 <= RATIO * TOTAL as f64 * 1.05, "peak {peak} over ratio × what was available at the start");
}

#[test]
fn a_competitor_arriving_unseen_before_a_batch_costs_one_recovered_oom() {
    // Before the first call, while our reservation is only the weights, another process takes 70 %.
    let gpu = SimGpu::new(TOTAL, vec![(0, TOTAL * 7 / 10)]);
    let events = run(&gpu, 40);
    let s = summary(&events);
    assert_eq!((s.faces_restored, s.faces_failed), (320, 0), "{s}");
    assert_eq!(s.oom_events, 1, "{s}");
    let calls = gpu.state().calls.clone();
    assert_eq!(calls[0], (FIRST_PLAN, true), "the planned batch ran out of memory: {calls:?}");
    assert_eq!(calls[1], (FIRST_PLAN / 2, false), "and was retried at half: {calls:?}");
    let recoveries = events.iter().filter(|e| matches!(e, EngineEvent::OomRecovered { .. })).count();
    assert_eq!(recoveries, 1);
}

/// Batch sizes over a run as runs of equal sizes: "32 ×10, 13 ×19, 32 ×21" (an OOM call as "32!").
fn trace(calls: &[(usize, bool)]) -> String {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for &(n, oom) in calls {
        let label = if oom { format!("{n}!") } else { n.to_string() };
        match runs.last_mut() {
            Some((l, count)) if *l == label => *count += 1,
            _ => runs.push((label, 1)),
        }
    }
    runs.iter().map(|(l, c)| if *c > 1 { format!("{l} ×{c}") } else { l.clone() }).collect::<Vec<_>>().join(", ")
}

/// The planner before and after it counted our allocator's reservation, on the same device and
/// schedule (a competitor takes 60 % before call 10 and leaves before call 30), side by side. The
/// table is printed for docs/BENCHMARKS.md (`cargo test --release --test engine_sim_gpu -- --nocapture`).
#[test]
fn the_planner_before_and_after_counting_our_reservation() {
    let mut rows = Vec::new();
    for (name, held) in [("NVML free only (before)", false), ("free + held (now)", true)] {
        let gpu = SimGpu::new(TOTAL, vec![(10, TOTAL * 6 / 10), (30, 0)]);
        let s = summary(&run_with(&gpu, 200, held));
        let state = gpu.state();
        rows.push((name, state.calls.clone(), s.oom_events, s.faces_failed, state.peak_reserved));
    }
    println!("simulated 24 GiB GPU, ratio 0.50, 1.5 GiB fixed + 0.25 GiB a face, 1,600 faces; competitor 60 % for calls 10-29");
    println!("{:<24} {:>5} {:>5} {:>10} {:>10}  batch sizes in call order", "planner", "calls", "OOMs", "faces lost", "peak ours");
    for (name, calls, ooms, lost, peak) in &rows {
        println!("{name:<24} {:>5} {ooms:>5} {lost:>10} {:>8.1} G  {}", calls.len(), *peak as f64 / GIB as f64, trace(calls));
    }
    let (before, now) = (&rows[0].1, &rows[1].1);
    // Before: NVML counts our cached reservation as used, and the batch shrinks after the first one
    // with no competitor at all.
    assert!(before[1].0 < FIRST_PLAN, "the old planner did not collapse here: {}", trace(before));
    assert!(now[..10].iter().all(|c| c.0 == FIRST_PLAN), "{}", trace(now));
    assert!(now.len() < before.len(), "fewer, fuller calls: {} against {}", now.len(), before.len());
}
