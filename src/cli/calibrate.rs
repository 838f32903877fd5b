//! `calibrate`: measures GPEN's memory per batch on a device, prints it next to the analytic
//! estimate, and stores it for the batch planner.

use super::NetworkArgs;
use crate::device::device_name;
use crate::engine::memory::{self, MemoryMonitor};
use crate::engine::memory_model::{self, CalibrationStore};
use crate::engine::planner::{self, format_bytes};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Calibration file to update (default: calibrations.json in ~/.config/gpen-studio).
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Measure and print only; leave the calibration file alone.
    #[arg(long)]
    pub dry_run: bool,
    /// Also measure this SR network's memory per pixel of input (tiles are planned with it).
    #[arg(long, value_name = "FILE")]
    pub sr_weights: Option<PathBuf>,
}

pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let device = args.network.model.device()?;
    let label = memory::device_label(device);
    // Free memory before the model is loaded: what the planner's first decision sees.
    let monitor = MemoryMonitor::manual(memory::probe_for(device));
    let before = monitor.sample_now();
    let gpen = args.network.load()?;
    let config = gpen.config();
    let precision = gpen.precision;
    println!("calibrate: {config}, {} on {} ({label})", gpen.precision, device_name(device));
    let start = Instant::now();
    let run = memory_model::calibrate_run(&gpen).map_err(anyhow::Error::msg)?;
    let calibrated = run.model.clone();
    let analytic = memory_model::analytic(&config, gpen.precision);
    println!(
        "measured in {:.1} s: a forward pass adds {} at batch 1, {} at batch 2 (weights {} resident before)\n",
        start.elapsed().as_secs_f64(),
        format_bytes(run.peak1),
        format_bytes(run.peak2),
        format_bytes(memory_model::weight_bytes(&config)),
    );
    println!("{:<12} {:>10} {:>10} {:>10} {:>10}", "model", "fixed", "per face", "batch 1", "batch 8");
    for (name, m) in [("analytic", &analytic), ("calibrated", &calibrated)] {
        println!(
            "{name:<12} {:>10} {:>10} {:>10} {:>10}",
            format_bytes(m.fixed),
            format_bytes(m.per_face),
            format_bytes(m.bytes(1)),
            format_bytes(m.bytes(8))
        );
    }
    println!(
        "(exact: calibrated fixed {} B, per face {} B; analytic fixed {} B, per face {} B)",
        calibrated.fixed, calibrated.per_face, analytic.fixed, analytic.per_face
    );
    match &before {
        Some(s) => {
            let r = planner::recommend(s.free, crate::config::DEFAULT_MEMORY_RATIO, &calibrated, 64);
            println!("\nwith {} of {} free before loading: batch {} ({})", format_bytes(s.free), format_bytes(s.total), r.batch, r.reason);
        }
        None => println!("\nfree memory unknown: {}", monitor.last_error().unwrap_or_default()),
    }

    drop(gpen);
    let sr = match &args.sr_weights {
        Some(p) => {
            let up = crate::upscale::Upscaler::load(p, device)?;
            let (per_pixel, a, b) = memory_model::calibrate_sr(&up).map_err(anyhow::Error::msg)?;
            let analytic = crate::upscale::bytes_per_input_pixel(&up.config());
            println!(
                "\nSR ×{} ({}): {} at 96x96, {} at 192x192 → {per_pixel} B a pixel of input (analytic {analytic} B)",
                up.scale(),
                memory_model::sr_key(&up.config()),
                format_bytes(a),
                format_bytes(b)
            );
            Some((up.config(), per_pixel))
        }
        None => None,
    };

    let path = args.store.clone().unwrap_or_else(CalibrationStore::default_path);
    let mut store = CalibrationStore::load(&path);
    if !args.dry_run {
        store.insert(&label, &config, precision, &calibrated);
        if let Some((c, per_pixel)) = &sr {
            store.insert_sr(&label, c, *per_pixel);
        }
        store.save().map_err(anyhow::Error::msg)?;
    }
    println!("\nstored calibrations ({}{}):", path.display(), if args.dry_run { ", not updated: --dry-run" } else { "" });
    println!("  {:<28} {:<14} {:<6} {:>10} {:>10}  when (UTC)", "device", "config", "prec", "fixed", "per face");
    for e in store.entries() {
        println!(
            "  {:<28} {:<14} {:<6} {:>10} {:>10}  {}",
            e.device,
            e.config,
            e.precision,
            format_bytes(e.fixed),
            format_bytes(e.per_face),
            e.when
        );
    }
    for e in store.sr_entries() {
        println!(
            "  {:<28} {:<14} {:<6} {:>10} {:>10}  {}",
            e.device,
            format!("sr {}", e.config),
            "fp32",
            "-",
            format!("{} B/px", e.per_input_pixel),
            e.when
        );
    }
    Ok(ExitCode::SUCCESS)
}
