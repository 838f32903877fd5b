//! `bench upscale`: background super-resolution speed by tile size (megapixels of input a second,
//! peak memory, and how far each tile size moves the output from an untiled run), and, with
//! `--memory-limit`, fixed tiles against tiles planned from memory on an emulated small device
//! (each strategy in its own process under an address-space cap, as `bench engine` does).

use crate::engine::planner::format_bytes;
use crate::upscale::{self, PhotoUpscaler, TILE_PAD};
use crate::upscale::{RrdbConfig, Tiles, Upscaler};
use anyhow::{Context, bail};
use clap::Args;
use image::RgbImage;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Args)]
// Timed on the CPU unless asked otherwise.
#[command(mut_arg("device", |a| a.default_value("cpu")))]
pub struct UpscaleBenchArgs {
    /// RRDBNet weights; without it, --config with placeholder weights (speed does not depend on them).
    #[arg(long, value_name = "FILE")]
    pub sr_weights: Option<PathBuf>,
    /// Released configuration for placeholder weights: esrnet-x1, esrnet-x2, esrnet-x4, esrgan-x4plus.
    #[arg(long, default_value = "esrnet-x2", value_name = "NAME")]
    pub config: String,
    /// The photo to upscale (a crop of it with --crop W,H from its top-left corner).
    #[arg(long, default_value = "../shared/photos/solvay_1927.png", value_name = "IMAGE")]
    pub photo: PathBuf,
    #[arg(long, value_delimiter = ',', value_name = "W,H")]
    pub crop: Option<Vec<u32>>,
    /// Tile sizes to time, comma separated (0: the whole photo).
    #[arg(long, value_delimiter = ',', default_value = "0,256,128,64", value_name = "N,...")]
    pub tiles: Vec<u32>,
    /// Timed runs per tile size after one warm-up; the median is reported.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// Emulate a device with this much memory beyond the loaded model (CPU only) and compare
    /// `fixed:N` tiles (no retry: out of memory loses the photo) with `planned` tiles (from the
    /// memory reading, halved on out-of-memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub memory_limit: Option<u64>,
    #[arg(long, value_delimiter = ',', default_value = "fixed:0,fixed:256,planned", value_name = "LIST")]
    pub strategies: Vec<String>,
    /// Also time N tiles in one forward call against N calls (whether tiles would gain from
    /// sharing a batch).
    #[arg(long, value_name = "N")]
    pub tile_batch: Option<usize>,
    #[command(flatten)]
    pub device: super::DeviceArg,
    #[arg(long, hide = true)]
    pub child_strategy: Option<String>,
}

fn named_config(name: &str) -> anyhow::Result<RrdbConfig> {
    Ok(match name {
        "esrnet-x1" => RrdbConfig::esrnet(1),
        "esrnet-x2" => RrdbConfig::esrnet(2),
        "esrnet-x4" => RrdbConfig::esrnet(4),
        "esrgan-x4plus" => RrdbConfig::ESRGAN_X4PLUS,
        other => bail!("unknown configuration '{other}': esrnet-x1, esrnet-x2, esrnet-x4, esrgan-x4plus"),
    })
}

fn load(args: &UpscaleBenchArgs) -> anyhow::Result<(Upscaler, String)> {
    let device = args.device.resolve()?;
    Ok(match &args.sr_weights {
        Some(p) => (Upscaler::load(p, device)?, p.display().to_string()),
        None => (Upscaler::with_config(named_config(&args.config)?, device)?, format!("{} (placeholder weights)", args.config)),
    })
}

fn photo(args: &UpscaleBenchArgs) -> anyhow::Result<RgbImage> {
    let img = super::detect::open_rgb(&args.photo).map_err(anyhow::Error::msg)?;
    Ok(match args.crop.as_deref() {
        Some([w, h]) => image::imageops::crop_imm(&img, 0, 0, (*w).min(img.width()), (*h).min(img.height())).to_image(),
        Some(_) => bail!("--crop takes W,H"),
        None => img,
    })
}

pub fn run(args: UpscaleBenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(strategy) = args.child_strategy.clone() {
        return run_child(&args, &strategy);
    }
    let (up, what) = load(&args)?;
    let img = photo(&args)?;
    let mp = img.width() as f64 * img.height() as f64 / 1e6;
    println!(
        "bench upscale: {what}, ×{}, {}x{} ({mp:.2} MP), device {}, libtorch {}, {} threads; {} B a pixel of input (planning estimate)",
        up.scale(),
        img.width(),
        img.height(),
        args.device.choice,
        crate::sys::runtime_versions::libtorch_version(),
        tch::get_num_threads(),
        up.bytes_per_input_pixel()
    );
    println!("{:<8} {:>9} {:>9} {:>12} {:>12} {:>14}", "tile", "s", "MP/s", "peak growth", "max diff", "values differ");
    let mut untiled: Option<RgbImage> = None;
    for &t in &args.tiles {
        let tiles = (t > 0).then_some(Tiles { size: t, pad: TILE_PAD });
        let _ = up.process(&img, tiles, false)?; // warm-up
        let base = crate::sys::memory::process_rss().map(|r| r.0).unwrap_or(0);
        crate::sys::memory::reset_peak_rss();
        let mut times = Vec::new();
        let mut out = None;
        for _ in 0..args.repeat.max(1) {
            let s = Instant::now();
            out = Some(up.process(&img, tiles, false)?);
            times.push(s.elapsed().as_secs_f64());
        }
        let peak = crate::sys::memory::process_rss().map(|r| r.1).unwrap_or(0).saturating_sub(base);
        times.sort_by(f64::total_cmp);
        let s = times[times.len() / 2];
        let out = out.expect("ran");
        let (max, share) = match &untiled {
            Some(u) => {
                let d: Vec<u8> = u.as_raw().iter().zip(out.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
                (
                    d.iter().copied().max().unwrap_or(0).to_string(),
                    format!("{:.3} %", 100.0 * d.iter().filter(|&&v| v > 0).count() as f64 / d.len() as f64),
                )
            }
            None => ("-".into(), "-".into()),
        };
        let label = if t == 0 { "whole".to_string() } else { t.to_string() };
        println!("{label:<8} {s:>9.2} {:>9.3} {:>12} {max:>12} {share:>14}", mp / s, format_bytes(peak));
        if t == 0 {
            untiled = Some(out);
        }
    }
    if let Some(&n) = args.tile_batch.as_ref() {
        // Whether tiles (of one photo or several) would gain from sharing a forward call.
        let side = 128 + 2 * TILE_PAD as i64;
        let one = tch::Tensor::f_rand([1, 3, side, side], (tch::Kind::Float, tch::Device::Cpu))?;
        let many = tch::Tensor::f_rand([n as i64, 3, side, side], (tch::Kind::Float, tch::Device::Cpu))?;
        let _ = (up.forward_raw(&many)?, up.forward_raw(&one)?);
        // Interleaved rounds, medians: the box is shared and the order of runs matters.
        let (mut apart, mut together) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..n {
                let _ = up.forward_raw(&one)?;
            }
            apart.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let _ = up.forward_raw(&many)?;
            together.push(t.elapsed().as_secs_f64());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (apart, together) = (median(&mut apart), median(&mut together));
        println!(
            "\n{n} tiles of 128 px (+{TILE_PAD} px context), medians of 3 interleaved rounds: {n} calls {apart:.2} s, one call of {n} {together:.2} s ({:.2}x)",
            apart / together
        );
    }
    if let Some(limit) = args.memory_limit {
        println!("\nemulated device: {} beyond the loaded model", format_bytes(limit));
        println!("{:<12} {:>9} {:>5} {:>10} {:>9}  plan", "strategy", "s", "OOMs", "final tile", "success");
        for strategy in &args.strategies {
            let mut cmd = std::process::Command::new(std::env::current_exe()?);
            cmd.args(["bench", "upscale", "--device", &args.device.choice.to_string(), "--config", &args.config]);
            if let Some(w) = &args.sr_weights {
                cmd.arg("--sr-weights").arg(w);
            }
            cmd.arg("--photo").arg(&args.photo);
            if let Some(c) = &args.crop {
                cmd.arg("--crop").arg(c.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
            }
            cmd.args(["--memory-limit", &limit.to_string(), "--child-strategy", strategy]);
            let out = cmd.output().context("starting a benchmark process")?;
            let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").to_string();
            if out.status.success() && !line.is_empty() {
                println!("{line}");
            } else {
                let why = String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no output").to_string();
                println!("{strategy:<12} {:>9} {:>5} {:>10} {:>9}  process died: {why}", "-", "-", "-", "0%");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One strategy under the address-space cap; prints its row.
fn run_child(args: &UpscaleBenchArgs, strategy: &str) -> anyhow::Result<ExitCode> {
    let (up, _) = load(args)?;
    let img = photo(args)?;
    let _ = up.process(&RgbImage::new(32, 32), None, false); // warm-up outside the cap
    let limit = args.memory_limit.context("--memory-limit")?;
    super::bench_engine::limit_address_space(limit)?;
    let start = Instant::now();
    let (result, plan) = if let Some(t) = strategy.strip_prefix("fixed:") {
        let t: u32 = t.parse().with_context(|| format!("bad strategy {strategy}"))?;
        let tiles = (t > 0).then_some(Tiles { size: t, pad: TILE_PAD });
        let r = up.process(&img, tiles, false).map(|image| upscale::Upscaled { image, tiles, oom_events: 0 });
        (r.map_err(|e| e.to_string()), format!("fixed, no retry ({})", if t == 0 { "whole".into() } else { format!("{t} px") }))
    } else if strategy == "planned" {
        let available = crate::engine::memory::probe_for(tch::Device::Cpu).sample().map(|s| s.available()).unwrap_or(0);
        let plan = upscale::plan_tiles(
            img.width(),
            img.height(),
            (available as f64 * 0.8) as u64,
            up.bytes_per_input_pixel(),
            TILE_PAD,
            up.multiple(),
        );
        (upscale::upscale_with_retry(&up, &img, plan.tiles, false, &mut || false).map_err(|e| e.to_string()), plan.reason)
    } else {
        bail!("unknown strategy '{strategy}': fixed:N or planned");
    };
    let s = start.elapsed().as_secs_f64();
    match result {
        Ok(done) => {
            let tile = done.tiles.map_or("whole".to_string(), |t| format!("{} px", t.size));
            println!("{strategy:<12} {s:>9.2} {:>5} {tile:>10} {:>9}  {plan}", done.oom_events, "100%");
        }
        Err(e) => println!("{strategy:<12} {s:>9.2} {:>5} {:>10} {:>9}  {plan}: {}", 1, "-", "0%", crate::error::first_line(&e)),
    }
    Ok(ExitCode::SUCCESS)
}
