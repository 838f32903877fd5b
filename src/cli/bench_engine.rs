//! `bench engine`: the batching strategies side by side on the same photos — fixed batch sizes
//! (what tools without memory handling do: a batch that does not fit loses its faces) against the
//! adaptive engine — each in its own process, optionally inside an emulated smaller device.
//!
//! On the CPU the device is emulated with a real limit: the child process loads its models, then
//! caps its address space (RLIMIT_AS) at what it uses plus `--memory-limit`, so a batch that needs
//! more gets a real allocation failure from libtorch, and the adaptive planner sees the same limit
//! through the system-RAM probe.

use super::NetworkArgs;
use crate::config::{RunConfig, Sizer};
use crate::detect::{FaceDetector, Mtcnn, mtcnn::default_models_dir};
use crate::engine::memory_model::{self, CalibrationStore};
use crate::engine::planner::format_bytes;
use crate::engine::worker::{Components, EngineEvent, spawn};
use crate::error::SetupError;
use crate::photo::ReadLimits;
use crate::restore::FaceRestorer;
use crate::restore::gpen::Gpen;
use anyhow::{Context, bail};
use clap::Args;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tch::Device;

#[derive(Debug, Clone, Args)]
pub struct EngineBenchArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Photos or folders to restore.
    #[arg(long, num_args = 1.., value_name = "PATH", conflicts_with = "synthetic")]
    pub photos: Vec<PathBuf>,
    /// Generate N photos of 4 faces each (mosaics of the astronaut portrait in ../shared/photos, or
    /// of --face-source) instead of --photos.
    #[arg(long, value_name = "N")]
    pub synthetic: Option<usize>,
    /// The portrait the synthetic photos are made of.
    #[arg(long, value_name = "IMAGE", default_value = "../shared/photos/astronaut.png")]
    pub face_source: PathBuf,
    /// Strategies, comma separated: fixed:N (that many faces per call, no retry) and adaptive.
    #[arg(long, value_delimiter = ',', default_value = "fixed:1,fixed:4,fixed:8,adaptive", value_name = "LIST")]
    pub strategies: Vec<String>,
    /// Emulate a device with this much memory for the work beyond the loaded models (CPU only),
    /// e.g. 3GiB or 1500MiB.
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub memory_limit: Option<u64>,
    /// Memory ratio of the adaptive strategy.
    #[arg(long, default_value_t = crate::config::DEFAULT_MEMORY_RATIO, value_name = "R")]
    pub memory_ratio: f64,
    /// Also write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Internal: run one strategy in this process and write its result here.
    #[arg(long, hide = true, value_name = "STRATEGY")]
    pub child_strategy: Option<String>,
    #[arg(long, hide = true, value_name = "FILE")]
    pub child_out: Option<PathBuf>,
}

/// One strategy's result, written by the child as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StrategyResult {
    pub strategy: String,
    pub photos: usize,
    pub faces: usize,
    pub faces_restored: usize,
    pub faces_lost: usize,
    pub oom_events: usize,
    pub wall_s: f64,
    pub peak_bytes: u64,
    /// Set when the child process died instead of reporting.
    pub crashed: Option<String>,
}

pub fn run(args: EngineBenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(strategy) = args.child_strategy.clone() {
        return run_child(&args, &strategy);
    }
    let scratch = tempfile_dir("gpen-bench-engine")?;
    let photos = match args.synthetic {
        Some(n) => make_synthetic(&args.face_source, n, &scratch.join("photos"))?,
        None => crate::archive::inputs::collect_photos(&args.photos, false),
    };
    if photos.is_empty() {
        bail!("no photos: give --photos PATH... or --synthetic N");
    }
    // Count the faces once, so a strategy whose process dies still shows how many it lost.
    let detector = Mtcnn::load(&default_models_dir(), Device::Cpu)?;
    let mut faces = 0;
    for p in &photos {
        faces += detector.detect(&crate::photo::read_photo(p, &ReadLimits::default())?.pixels)?.len();
    }
    println!(
        "bench engine: {} photos, {faces} faces; {}; device {}; memory limit {}",
        photos.len(),
        args.network.config.as_deref().map(|c| format!("{c} random weights")).unwrap_or_else(|| args
            .network
            .model
            .weights_path()
            .display()
            .to_string()),
        args.network.model.device.choice,
        args.memory_limit.map(format_bytes).unwrap_or_else(|| "none".into()),
    );
    println!(
        "{:<10} {:>6} {:>6} {:>9} {:>7} {:>10} {:>5} {:>10} {:>8}",
        "strategy", "photos", "faces", "total s", "s/face", "peak", "OOMs", "faces lost", "success"
    );
    let mut results = Vec::new();
    for strategy in &args.strategies {
        let out = scratch.join(format!("{}.json", strategy.replace(':', "-")));
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(child_args(&args, strategy, &photos, &out));
        let child = cmd.output().context("starting a benchmark process")?;
        let result = match std::fs::read_to_string(&out).ok().and_then(|t| serde_json::from_str::<StrategyResult>(&t).ok()) {
            Some(r) => r,
            None => StrategyResult {
                strategy: strategy.clone(),
                photos: photos.len(),
                faces,
                faces_restored: 0,
                faces_lost: faces,
                oom_events: 0,
                wall_s: 0.0,
                peak_bytes: 0,
                crashed: Some(format!(
                    "{}: {}",
                    child.status,
                    String::from_utf8_lossy(&child.stderr).lines().last().unwrap_or("no output")
                )),
            },
        };
        print_row(&result);
        results.push(result);
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "photos": photos.len(), "faces": faces, "device": args.network.model.device.choice.to_string(),
            "memory_limit": args.memory_limit, "config": args.network.config, "results": results,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(ExitCode::SUCCESS)
}

fn print_row(r: &StrategyResult) {
    let per_face = if r.faces_restored > 0 { format!("{:.2}", r.wall_s / r.faces_restored as f64) } else { "-".into() };
    let success = if r.faces > 0 { 100.0 * r.faces_restored as f64 / r.faces as f64 } else { 100.0 };
    println!(
        "{:<10} {:>6} {:>6} {:>9.1} {:>7} {:>10} {:>5} {:>10} {:>7.0}%",
        r.strategy,
        r.photos,
        r.faces,
        r.wall_s,
        per_face,
        if r.peak_bytes > 0 { format_bytes(r.peak_bytes) } else { "-".into() },
        r.oom_events,
        r.faces_lost,
        success
    );
    if let Some(why) = &r.crashed {
        println!("           process died: {why}");
    }
}

fn child_args(args: &EngineBenchArgs, strategy: &str, photos: &[PathBuf], out: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["bench".into(), "engine".into(), "--device".into(), args.network.model.device.choice.to_string()];
    v.extend(["--precision".into(), args.network.model.precision.to_string()]);
    if let Some(t) = args.network.model.threads {
        v.extend(["--threads".into(), t.to_string()]);
    }
    if args.network.random_weights {
        v.extend(["--random-weights".into(), "--config".into(), args.network.config.clone().unwrap_or_default()]);
    } else {
        v.extend(["--weights".into(), args.network.model.weights_path().display().to_string()]);
    }
    if let Some(l) = args.memory_limit {
        v.extend(["--memory-limit".into(), l.to_string()]);
    }
    v.extend(["--memory-ratio".into(), args.memory_ratio.to_string()]);
    v.extend(["--child-strategy".into(), strategy.into(), "--child-out".into(), out.display().to_string()]);
    v.push("--photos".into());
    v.extend(photos.iter().map(|p| p.display().to_string()));
    v
}

/// Runs one strategy in this process (started by the parent) and writes its result. Every strategy
/// goes through the product's engine; they differ only in the batch sizer.
fn run_child(args: &EngineBenchArgs, strategy: &str) -> anyhow::Result<ExitCode> {
    let out_file = args.child_out.clone().context("--child-out is required with --child-strategy")?;
    let device = args.network.model.device()?;
    let sizer = if let Some(n) = strategy.strip_prefix("fixed:") {
        let n: usize = n.parse().ok().filter(|&n| n > 0).with_context(|| format!("bad strategy {strategy}"))?;
        Sizer::FixedNoRetry(n)
    } else if strategy == "adaptive" {
        Sizer::Planned
    } else {
        bail!("unknown strategy '{strategy}': use fixed:N or adaptive");
    };
    let gpen = args.network.load()?;
    let photos = crate::archive::inputs::collect_photos(&args.photos, false);
    let out_dir = out_file.with_extension("out");
    std::fs::create_dir_all(&out_dir)?;
    // Warm up outside the measurement (first-call allocations, thread pools).
    let warm = RgbImage::new(gpen.size(), gpen.size());
    let _ = gpen.restore(&[&warm]);
    let _ = Mtcnn::load(&default_models_dir(), device)?.detect(&RgbImage::new(64, 64));
    if let Some(limit) = args.memory_limit {
        if device != Device::Cpu {
            bail!("--memory-limit emulates a smaller device on the CPU only; on CUDA use the real card");
        }
        limit_address_space(limit)?;
    }
    crate::sys::memory::reset_peak_rss();
    let start = Instant::now();
    let (faces, restored, ooms) = run_engine(gpen, &args.network, &photos, &out_dir, args.memory_ratio, sizer)?;
    let wall = start.elapsed().as_secs_f64();
    let peak = crate::sys::memory::process_rss().map(|r| r.1).unwrap_or(0);
    let result = StrategyResult {
        strategy: strategy.into(),
        photos: photos.len(),
        faces,
        faces_restored: restored,
        faces_lost: faces - restored,
        oom_events: ooms,
        wall_s: wall,
        peak_bytes: peak,
        crashed: None,
    };
    std::fs::write(&out_file, serde_json::to_string(&result)?)?;
    Ok(ExitCode::SUCCESS)
}

/// The engine's parts for a benchmark: GPEN as `network` says (a file or random weights), MTCNN,
/// the real memory probes, the stored calibration or the analytic memory model.
pub fn components(network: &NetworkArgs) -> Components {
    let network = network.clone();
    Components {
        restorer: Box::new(move |_, _| {
            network.load().map(|g| Box::new(g) as Box<dyn FaceRestorer>).map_err(|e| SetupError::Load(format!("{e:#}")))
        }),
        ..Components::real()
    }
}

/// The product's engine with `sizer` choosing the batches: (faces found, restored, OOM events).
fn run_engine(
    gpen: Gpen,
    network: &NetworkArgs,
    photos: &[PathBuf],
    out: &Path,
    ratio: f64,
    sizer: Sizer,
) -> anyhow::Result<(usize, usize, usize)> {
    let device = gpen.device;
    let label = crate::engine::memory::device_label(device);
    let config = gpen.config();
    let precision = gpen.precision;
    let model = CalibrationStore::load(&CalibrationStore::default_path())
        .get(&label, &config, precision)
        .unwrap_or_else(|| memory_model::analytic(&config, precision));
    // The model loaded (and warmed up) before the limit is what the engine uses.
    let gpen = Mutex::new(Some(gpen));
    let components = Components {
        restorer: Box::new(move |_, _| {
            gpen.lock().unwrap().take().map(|g| Box::new(g) as Box<dyn FaceRestorer>).ok_or(SetupError::Load("loaded once".into()))
        }),
        fallback: Box::new(|_, _| None),
        memory_model: Box::new(move |_, _, _| model.clone()),
        calibrate: Box::new(|_, _, _| Err(SetupError::Calibration("not in the benchmark".into()))),
        ..components(network)
    };
    let settings = RunConfig {
        device: match device {
            Device::Cuda(i) => crate::device::DeviceChoice::Cuda(i),
            _ => crate::device::DeviceChoice::Cpu,
        },
        precision,
        out_dir: out.into(),
        overwrite: true,
        memory_ratio: ratio,
        preview_side: 0,
        sizer,
        monitor_interval: Duration::from_millis(250),
        // The strategies differ only in their batches: MTCNN (which the synthetic mosaics are made
        // for), the rectangle mask and no identity measure, whatever add-ons are installed.
        detector: crate::config::DetectorChoice::Mtcnn,
        mask: crate::config::MaskChoice::Rectangle,
        identity: crate::config::IdentityChoice::Off,
        ..RunConfig::default()
    };
    let engine = spawn(settings, components, Box::new(|| {}));
    let mut found = 0;
    let mut plans = super::output::PlanLines::new(super::output::verbosity());
    let ended = engine.run_to_end(photos.iter().cloned().map(crate::archive::Photo::direct).collect(), |event| match event {
        EngineEvent::FacesFound { faces, .. } => found += faces.len(),
        EngineEvent::Recommendation { batch, reason } => {
            if let Some(line) = plans.batch(*batch, reason) {
                eprintln!("{line}");
            }
        }
        _ => {}
    });
    if let Some(e) = ended.setup_error {
        bail!(e);
    }
    Ok((found, ended.summary.faces_restored, ended.summary.oom_events))
}

/// Caps the address space at what the process maps now plus `extra` bytes.
pub(super) fn limit_address_space(extra: u64) -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let vm_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("reading VmSize")?;
    let limit = vm_kib * 1024 + extra;
    if let Err(e) = crate::sys::process::set_address_space_limit(limit) {
        bail!("setrlimit(RLIMIT_AS) failed: {e}");
    }
    eprintln!(
        "emulated device: address space capped at {} (current {} + {})",
        format_bytes(limit),
        format_bytes(vm_kib * 1024),
        format_bytes(extra)
    );
    Ok(())
}

fn tempfile_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `n` photos of 4 faces: 2 x 2 mosaics of the portrait, each tile shifted and mirrored a little
/// differently so no two photos are identical.
fn make_synthetic(source: &Path, n: usize, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let face = crate::photo::read_photo(source, &ReadLimits::default())
        .with_context(|| format!("reading the face source {}", source.display()))?
        .pixels;
    let tile = image::imageops::resize(&face, 320, 320, image::imageops::FilterType::Triangle);
    std::fs::create_dir_all(dir)?;
    (0..n)
        .map(|i| {
            let mut mosaic = RgbImage::from_pixel(660, 660, image::Rgb([40, 40, 40]));
            for t in 0..4 {
                let mut tile = tile.clone();
                if (i + t) % 2 == 1 {
                    tile = image::imageops::flip_horizontal(&tile);
                }
                let (x, y) = ((t % 2) as i64 * 330 + (i % 5) as i64, (t / 2) as i64 * 330 + (i % 3) as i64);
                image::imageops::replace(&mut mosaic, &tile, x, y);
            }
            let path = dir.join(format!("synthetic{i:03}.png"));
            mosaic.save(&path)?;
            Ok(path)
        })
        .collect()
}
