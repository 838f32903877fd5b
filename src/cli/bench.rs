//! `bench`: speed and memory of the network, printed as a table and optionally written as JSON.

use super::NetworkArgs;
use crate::config::{RunConfig, Workers};
use crate::device::device_name;
use crate::engine::planner::format_bytes;
use crate::engine::worker::{EngineEvent, spawn};
use crate::restore::gpen::Gpen;
use crate::sys::memory;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Per-face latency, faces/s and peak memory of the GPEN network at several batch sizes.
    Generator(GeneratorBenchArgs),
    /// Whole-photo restoration through the engine with several worker counts side by side:
    /// photos/s, faces/s, CPU busy, peak RSS, each stage's busy time and the GPU stage's wait.
    /// Results go to a temporary folder that is removed afterwards.
    Pipeline(PipelineBenchArgs),
    /// Batching strategies side by side (fixed sizes against the adaptive engine), optionally in an
    /// emulated smaller device: time per face, peak memory, out-of-memory events, faces lost.
    Engine(super::bench_engine::EngineBenchArgs),
    /// GPEN's face path beside ours: detection time with MTCNN and RetinaFace on the same photos,
    /// and the paste mask per face (ParseNet and its post-processing) against the rectangle.
    FacePath(super::bench_face_path::FacePathBenchArgs),
    /// The identity guard's cost beside GPEN's: the identity network's time an embedding by batch,
    /// and what measuring (and softening) a face adds to restoring it.
    Identity(super::bench_identity::IdentityBenchArgs),
    /// Background super-resolution by tile size (MP/s, peak memory, difference from untiled), and
    /// fixed against planned tiles on an emulated small device.
    Upscale(super::bench_upscale::UpscaleBenchArgs),
    /// The window's frame time with a long queue (default 1,000 photos), drawn headless: median,
    /// 95th percentile and worst frame.
    Gui(super::bench_gui::GuiBenchArgs),
}

#[derive(Debug, Args)]
pub struct PipelineBenchArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(flatten)]
    pub face_args: super::restore::FaceArgs,
    #[command(flatten)]
    pub mask_args: super::restore::MaskArgs,
    #[command(flatten)]
    pub identity_args: super::restore::IdentityArgs,
    /// Photos or folders to restore.
    #[arg(long, num_args = 1.., value_name = "PATH", required_unless_present = "synthetic")]
    pub photos: Vec<PathBuf>,
    /// Make N JPEGs of 6-13 MP from the photos in --synthetic-from instead (upscaled, a little
    /// different each), in a temporary folder.
    #[arg(long, value_name = "N", conflicts_with = "photos")]
    pub synthetic: Option<usize>,
    /// Images the synthetic photos are made of, in turn.
    #[arg(long, value_name = "IMAGE", num_args = 1.., default_values = ["../shared/photos/solvay_1927.png", "../shared/photos/astronaut.png"])]
    pub synthetic_from: Vec<PathBuf>,
    /// Worker counts to compare, run one after the other on the same photos: 1 (every step on one
    /// thread), N, or auto.
    #[arg(long, value_delimiter = ',', default_value = "1,auto", value_name = "N,...")]
    pub workers: Vec<Workers>,
    /// Faces per GPEN call (default: planned from free memory, as `restore` does).
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Runs of the whole list; each row's median is reported.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// Also write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GeneratorBenchArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Batch sizes to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4", value_name = "N,...")]
    pub batch: Vec<i64>,
    /// Timed runs per batch size after one warm-up run; the median is reported.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeat: usize,
    /// Also time each stage of the network (one run at the first batch size) and print the split.
    #[arg(long)]
    pub profile: bool,
    /// Also write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, serde::Serialize)]
struct Row {
    batch: i64,
    runs_s: Vec<f64>,
    median_s: f64,
    s_per_face: f64,
    faces_per_s: f64,
    /// CPU: peak resident set of the process during the runs; CUDA: allocator peak.
    peak_bytes: Option<u64>,
    /// CPU: peak resident set minus the resident set before the runs (activations, workspace).
    peak_growth_bytes: Option<u64>,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Generator(args) => bench_generator(args),
        BenchCommand::Pipeline(args) => bench_pipeline(args),
        BenchCommand::Engine(args) => super::bench_engine::run(args),
        BenchCommand::FacePath(args) => super::bench_face_path::run(args),
        BenchCommand::Upscale(args) => super::bench_upscale::run(args),
        BenchCommand::Identity(args) => super::bench_identity::run(args),
        BenchCommand::Gui(args) => super::bench_gui::run(args),
    }
}

fn bench_pipeline(args: PipelineBenchArgs) -> anyhow::Result<ExitCode> {
    let scratch = std::env::temp_dir().join(format!("gpen-studio-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = bench_pipeline_in(&args, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn bench_pipeline_in(args: &PipelineBenchArgs, scratch: &std::path::Path) -> anyhow::Result<ExitCode> {
    let inputs = match args.synthetic {
        Some(n) => super::bench_photos::make_large_photos(&args.synthetic_from, n, &scratch.join("photos"))?,
        None => crate::archive::inputs::collect_photos(&args.photos, false),
    };
    if inputs.is_empty() {
        anyhow::bail!("no photos: give --photos PATH... or --synthetic N");
    }
    let megapixels: Vec<f64> =
        inputs.iter().filter_map(|p| image::image_dimensions(p).ok()).map(|(w, h)| w as f64 * h as f64 / 1e6).collect();
    let (mp_min, mp_max) = megapixels.iter().fold((f64::MAX, 0.0f64), |(a, b), &m| (a.min(m), b.max(m)));
    let device = args.network.model.device()?;
    println!(
        "bench pipeline: {} photos ({mp_min:.1}-{mp_max:.1} MP), {}, {} on {}, {} cores, libtorch {} intra-op threads",
        inputs.len(),
        network_name(&args.network),
        args.network.model.precision,
        device_name(device),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        tch::get_num_threads(),
    );
    // Read every photo once so the first row does not pay for a cold file cache.
    for p in &inputs {
        let _ = std::fs::read(p);
    }
    let mut rows: Vec<Vec<PipelineRow>> = vec![Vec::new(); args.workers.len()];
    for _ in 0..args.repeat.max(1) {
        for (i, &workers) in args.workers.iter().enumerate() {
            let out = scratch.join(format!("out-{i}"));
            let _ = std::fs::remove_dir_all(&out);
            let row = run_pipeline_once(args, workers, &inputs, &out)?;
            let _ = std::fs::remove_dir_all(&out);
            rows[i].push(row);
        }
    }
    println!(
        "{:<8} {:>7} {:>9} {:>8} {:>8} {:>6} {:>9} {:>9} | busy s: {:>7} {:>7} {:>6} {:>7} {:>6} {:>8} {:>6} {:>7} | {:>9}",
        "workers",
        "faces",
        "wall s",
        "photo/s",
        "faces/s",
        "CPU %",
        "peak RSS",
        "budget",
        "decode",
        "detect",
        "align",
        "GPEN",
        "mask",
        "identity",
        "paste",
        "encode",
        "GPU idle"
    );
    let mut medians = Vec::new();
    for (i, runs) in rows.iter().enumerate() {
        let mut sorted = runs.clone();
        sorted.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
        let r = sorted[sorted.len() / 2].clone();
        let t = &r.times;
        println!(
            "{:<8} {:>7} {:>9.2} {:>8.3} {:>8.2} {:>5.0}% {:>9} {:>9} | busy s: {:>7.1} {:>7.1} {:>6.1} {:>7.1} {:>6.1} {:>8.1} {:>6.1} {:>7.1} | {:>8.1}s",
            args.workers[i].to_string(),
            r.faces,
            r.wall_s,
            r.photos as f64 / r.wall_s,
            r.faces as f64 / r.wall_s,
            r.cpu_percent,
            format_bytes(r.peak_rss),
            format_bytes(r.ram_budget),
            t.decode.as_secs_f64(),
            t.detect.as_secs_f64(),
            t.align.as_secs_f64(),
            t.restore.as_secs_f64(),
            t.mask.as_secs_f64(),
            t.identity.as_secs_f64(),
            t.paste.as_secs_f64(),
            t.encode.as_secs_f64(),
            // Not restoring: waiting for the CPU stages, or (one thread) doing their work itself.
            (r.wall_s - t.restore.as_secs_f64() - t.mask.as_secs_f64() - t.identity.as_secs_f64()).max(0.0),
        );
        if r.identity_embeddings > 0 && r.faces > 0 {
            // Two embeddings a face; the rest are the guard's bisection steps.
            let extra = r.identity_embeddings.saturating_sub(2 * r.faces);
            println!(
                "         identity: {} embeddings ({} for the guard's bisection), {:.0} ms a face = {:.1} % of GPEN's time a face; {} faces softened",
                r.identity_embeddings,
                extra,
                1e3 * t.identity.as_secs_f64() / r.faces as f64,
                100.0 * t.identity.as_secs_f64() / t.restore.as_secs_f64().max(1e-9),
                r.faces_softened
            );
        }
        if r.failed > 0 {
            println!("         {} photos failed", r.failed);
        }
        medians.push(r);
    }
    if let (Some(base), true) = (medians.first(), medians.len() > 1) {
        for (i, r) in medians.iter().enumerate().skip(1) {
            println!("workers {}: {:.2}x the photos/s of workers {}", args.workers[i], base.wall_s / r.wall_s, args.workers[0]);
        }
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "photos": inputs.len(), "megapixels": megapixels, "network": network_name(&args.network),
            "device": device_name(device), "runs": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(if medians.iter().all(|r| r.failed == 0) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[derive(Debug, Clone, serde::Serialize)]
struct PipelineRow {
    workers: String,
    photos: usize,
    faces: usize,
    failed: usize,
    wall_s: f64,
    cpu_percent: f64,
    peak_rss: u64,
    ram_budget: u64,
    peak_charged: u64,
    gpu_waited_s: f64,
    times: crate::pipeline::StageTimes,
    identity_embeddings: usize,
    faces_softened: usize,
}

/// One run of the engine over `inputs` with `workers`, timed from the model being loaded to the
/// last photo written.
fn run_pipeline_once(args: &PipelineBenchArgs, workers: Workers, inputs: &[PathBuf], out: &std::path::Path) -> anyhow::Result<PipelineRow> {
    let config = RunConfig {
        weights: args.network.model.weights_path(),
        device: args.network.model.device.choice,
        precision: args.network.model.precision,
        out_dir: out.into(),
        overwrite: true,
        batch_override: args.batch,
        workers,
        preview_side: 0,
        ..RunConfig::default()
    };
    let config = args.identity_args.apply(args.mask_args.apply(args.face_args.apply(config)));
    config.validate().map_err(super::exit::usage)?;
    let engine = spawn(config, super::bench_engine::components(&args.network), Box::new(|| {}));
    let mut clock: Option<(Instant, f64)> = None;
    // The clock stops at the last event (the run's end), before the engine is shut down.
    let mut end: Option<(Instant, f64)> = None;
    let photos = inputs.iter().cloned().map(crate::archive::Photo::direct).collect();
    let ended = engine.run_to_end(photos, |event| match event {
        EngineEvent::ModelLoaded { .. } => {
            memory::reset_peak_rss();
            clock = Some((Instant::now(), crate::sys::process::cpu_seconds()));
        }
        EngineEvent::Finished(_) => end = Some((Instant::now(), crate::sys::process::cpu_seconds())),
        _ => {}
    });
    if let Some(e) = ended.setup_error {
        anyhow::bail!(e);
    }
    let summary = ended.summary;
    let (start, cpu0) = clock.unwrap_or((Instant::now(), crate::sys::process::cpu_seconds()));
    let (stop, cpu1) = end.unwrap_or((Instant::now(), crate::sys::process::cpu_seconds()));
    let wall = stop.duration_since(start).as_secs_f64();
    let cpu = cpu1 - cpu0;
    let peak_rss = memory::process_rss().map(|r| r.1).unwrap_or(0);
    Ok(PipelineRow {
        workers: workers.to_string(),
        photos: summary.photos(),
        faces: summary.faces_restored,
        failed: summary.photos_failed,
        wall_s: wall,
        cpu_percent: 100.0 * cpu / wall.max(1e-9),
        peak_rss,
        ram_budget: summary.ram_budget,
        peak_charged: summary.peak_charged_bytes,
        gpu_waited_s: summary.gpu_waited.as_secs_f64(),
        identity_embeddings: summary.identity_embeddings,
        faces_softened: summary.faces_softened,
        times: summary.times,
    })
}

fn network_name(network: &NetworkArgs) -> String {
    if network.random_weights {
        format!("{} random weights", network.config.as_deref().unwrap_or("bfr-512"))
    } else {
        network.model.weights_path().display().to_string()
    }
}

fn bench_generator(args: GeneratorBenchArgs) -> anyhow::Result<ExitCode> {
    let gpen = args.network.load()?;
    let device = gpen.device;
    let size = gpen.config().size;
    println!(
        "bench generator: {} ({}), {} on {}, {} CPU threads, libtorch {}",
        gpen.config(),
        if args.network.random_weights { "random weights" } else { "weights from file" },
        gpen.precision,
        device_name(device),
        tch::get_num_threads(),
        crate::sys::runtime_versions::libtorch_version(),
    );
    println!("{}", memory_model_line(&gpen));
    println!("{:>5} {:>5} {:>12} {:>9} {:>8} {:>11} {:>11}", "batch", "runs", "median s", "s/face", "faces/s", "peak MiB", "growth MiB");
    let mut rows = Vec::new();
    for &batch in &args.batch {
        let x = Tensor::f_rand([batch, 3, size, size], (Kind::Float, Device::Cpu))?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
        let baseline = memory::process_rss().map(|r| r.0);
        reset_peaks(device);
        let mut runs = Vec::new();
        let mut failure = None;
        for i in 0..=args.repeat {
            let start = Instant::now();
            if let Err(e) = gpen.forward(&x) {
                failure = Some(e);
                break;
            }
            if i > 0 {
                runs.push(start.elapsed().as_secs_f64());
            }
        }
        if let Some(e) = failure {
            println!("{batch:>5} failed: {e}");
            let _ = memory::empty_cache();
            continue;
        }
        let median = median(&runs);
        let (peak, growth) = read_peaks(device, baseline);
        let mib = |b: Option<u64>| b.map(|b| format!("{:.0}", b as f64 / 1048576.0)).unwrap_or_else(|| "-".into());
        println!(
            "{batch:>5} {:>5} {median:>12.3} {:>9.3} {:>8.3} {:>11} {:>11}",
            runs.len(),
            median / batch as f64,
            batch as f64 / median,
            mib(peak),
            mib(growth)
        );
        rows.push(Row {
            batch,
            median_s: median,
            s_per_face: median / batch as f64,
            faces_per_s: batch as f64 / median,
            runs_s: runs,
            peak_bytes: peak,
            peak_growth_bytes: growth,
        });
    }
    if args.profile {
        let batch = args.batch.first().copied().unwrap_or(1);
        let x = Tensor::f_rand([batch, 3, size, size], (Kind::Float, Device::Cpu))?;
        let _warm_up = gpen.forward(&x)?;
        let stages = gpen.profile(&x)?;
        let total: f64 = stages.iter().map(|(_, t)| t).sum();
        println!("\nstage times at batch {batch} (one run, {total:.3} s):");
        for (name, t) in &stages {
            println!("  {name:<24} {t:>8.3} s {:>5.1} %", 100.0 * t / total);
        }
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "config": gpen.config(), "device": device_name(device), "precision": gpen.precision.to_string(),
            "threads": tch::get_num_threads(), "random_weights": args.network.random_weights, "rows": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(if rows.len() == args.batch.len() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn reset_peaks(device: Device) {
    match device {
        Device::Cuda(i) => {
            let _ = memory::reset_peak(i);
        }
        _ => {
            memory::reset_peak_rss();
        }
    }
}

fn read_peaks(device: Device, baseline: Option<u64>) -> (Option<u64>, Option<u64>) {
    match device {
        Device::Cuda(i) => (memory::allocator_stats(i).ok().map(|s| s.allocated_peak as u64), None),
        _ => {
            let peak = memory::process_rss().map(|r| r.1);
            (peak, peak.zip(baseline).map(|(p, b)| p.saturating_sub(b)))
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

/// The memory model the planner would use for this network and device: calibrated or estimated.
fn memory_model_line(gpen: &Gpen) -> String {
    use crate::engine::memory_model::{self, CalibrationStore, ModelSource};
    use crate::engine::planner::format_bytes;
    let label = crate::engine::memory::device_label(gpen.device);
    let stored = CalibrationStore::load(&CalibrationStore::default_path()).get(&label, &gpen.config(), gpen.precision);
    let model = stored.clone().unwrap_or_else(|| memory_model::analytic(&gpen.config(), gpen.precision));
    let source = match &model.source {
        ModelSource::Calibrated { when, .. } => format!("calibrated on {label} at {when}"),
        ModelSource::Analytic => "analytic estimate; `gpen-studio calibrate` measures it".into(),
    };
    format!("memory model: {} fixed + {} per face ({source})", format_bytes(model.fixed), format_bytes(model.per_face))
}
