//! `bench`: speed and memory of the network, printed as a table and optionally written as JSON.

use super::NetworkArgs;
use crate::detect::{Mtcnn, mtcnn::default_models_dir};
use crate::device::device_name;
use crate::gpen::Gpen;
use crate::memory;
use crate::photo::{OutputFormat, ReadLimits};
use crate::pipeline::{PipelineOptions, restore_photos};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Per-face latency, faces/s and peak memory of the GPEN network at several batch sizes.
    Generator(GeneratorBenchArgs),
    /// Whole-photo restoration: photos/s and the time split (decode, detect, align, GPEN, paste,
    /// encode). Results go to a temporary folder that is removed afterwards.
    Pipeline(PipelineBenchArgs),
    /// Batching strategies side by side (fixed sizes against the adaptive engine), optionally in an
    /// emulated smaller device: time per face, peak memory, out-of-memory events, faces lost.
    Engine(super::bench_engine::EngineBenchArgs),
}

#[derive(Debug, Args)]
pub struct PipelineBenchArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Photos or folders to restore.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub photos: Vec<PathBuf>,
    /// Faces per GPEN call.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: usize,
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
    }
}

fn bench_pipeline(args: PipelineBenchArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let gpen = args.network.load()?;
    let detector = Mtcnn::load(&default_models_dir(), gpen.device)?;
    let load = start.elapsed();
    let inputs = crate::inputs::collect_photos(&args.photos, false);
    let out = std::env::temp_dir().join(format!("gpen-studio-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out)?;
    let options = PipelineOptions {
        out_dir: out.clone(),
        batch: args.batch.max(1),
        strength: 1.0,
        format: OutputFormat::Png,
        save_faces: false,
        overwrite: true,
        limits: ReadLimits::default(),
        device: gpen.device,
    };
    println!(
        "bench pipeline: {} photos, {} ({}), {} on {}, batch {}, {} CPU threads",
        inputs.len(),
        gpen.config(),
        if args.network.random_weights { "random weights" } else { "weights from file" },
        gpen.precision,
        device_name(gpen.device),
        options.batch,
        tch::get_num_threads(),
    );
    let run_start = Instant::now();
    let summary = restore_photos(&inputs, &detector, &gpen, &options, &mut |_| {});
    let wall = run_start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    println!("{summary}");
    println!(
        "wall {wall:.2} s (+ {:.2} s loading the models): {:.3} photos/s, {:.3} faces/s",
        load.as_secs_f64(),
        inputs.len() as f64 / wall,
        summary.faces_restored as f64 / wall
    );
    let total = summary.times.total().as_secs_f64().max(1e-9);
    println!("{:<16} {:>9} {:>7}", "stage", "seconds", "share");
    for (name, d) in summary.times.named() {
        println!("{name:<16} {:>9.3} {:>6.1} %", d.as_secs_f64(), 100.0 * d.as_secs_f64() / total);
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "photos": inputs.len(), "faces": summary.faces_restored, "wall_s": wall, "load_s": load.as_secs_f64(),
            "config": gpen.config(), "device": device_name(gpen.device), "batch": options.batch, "times": summary.times,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(if summary.any_failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
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
        torch_version(),
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

fn torch_version() -> String {
    // torch-sys builds against exactly this version (its build.rs checks it).
    "2.13.0".into()
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
