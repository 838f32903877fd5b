//! `upscale`: background super-resolution of whole photos, no faces — GPEN's RealESRNet (or another
//! RRDBNet file) with tiles planned from free memory like `restore`'s batches, halved on
//! out-of-memory, results written atomically beside nothing else.

use super::restore::SrArgs;
use crate::config::{self, RunConfig};
use crate::photo::OutputFormat;
use crate::upscale::{self, PhotoUpscaler};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct UpscaleArgs {
    /// Photos, or folders of photos.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output folder (created if missing); inputs are never modified.
    #[arg(long, short = 'o', value_name = "OUTDIR")]
    pub output: PathBuf,
    /// Also take photos from sub-folders of the folders given.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Factor: 1, 2 or 4 (GPEN's realesrnet_xS.pth from the models folder unless --sr-weights).
    #[arg(long, default_value_t = 2, value_name = "S")]
    pub scale: u32,
    #[command(flatten)]
    pub sr_args: SrArgs,
    /// Share of the free GPU memory (system RAM on the CPU) that tiles may use, 0.10-0.95.
    #[arg(long, default_value_t = crate::config::DEFAULT_MEMORY_RATIO, value_name = "R", value_parser = config::parse_memory_ratio)]
    pub memory_ratio: f64,
    /// Output format: png, jpg or webp.
    #[arg(long, default_value = "png", value_name = "FMT")]
    pub format: OutputFormat,
    /// Replace results that already exist (by default they are kept, so a rerun resumes).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub device: super::DeviceArg,
}

pub fn run(args: UpscaleArgs) -> anyhow::Result<ExitCode> {
    let config = args.sr_args.apply(RunConfig { upscale: Some(args.scale), ..RunConfig::default() });
    config.validate().map_err(super::exit::usage)?;
    let path = config.resolve().map_err(anyhow::Error::msg)?.upscaler.expect("upscale is set");
    let found = crate::archive::inputs::find_photos(&args.inputs, args.recursive, Some(&args.output));
    let inputs: Vec<std::path::PathBuf> = found.photos.iter().map(|p| p.path.clone()).collect();
    if inputs.is_empty() {
        anyhow::bail!("no photos found in {:?} (looked for {})", args.inputs, crate::archive::inputs::IMAGE_EXTENSIONS.join(", "));
    }
    let device = args.device.resolve()?;
    let up = crate::upscale::Upscaler::load(&path, device)?;
    if up.scale() != args.scale {
        anyhow::bail!(
            "{} upscales ×{}, not ×{}; pass --scale {} or another --sr-weights",
            path.display(),
            up.scale(),
            args.scale,
            up.scale()
        );
    }
    let c = up.config();
    super::output::note(format_args!(
        "{} photos; RRDBNet ×{} ({} features, {} blocks, {}) on {}",
        inputs.len(),
        up.scale(),
        c.num_feat,
        c.num_block,
        path.display(),
        crate::device::device_name(device)
    ));
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    crate::paths::remove_stale_partials(&args.output);
    let outputs = crate::archive::inputs::plan_outputs(&found.photos, &args.output, args.format.extension());
    let mut probe = crate::engine::memory::probe_for(device);
    let per_pixel = crate::engine::plan::sr_bytes_per_pixel(&c, &crate::engine::memory::device_label(device));
    let (mut done, mut kept, mut failed) = (0, 0, 0);
    for (input, output) in inputs.iter().zip(&outputs) {
        if output.exists() && !args.overwrite {
            kept += 1;
            continue;
        }
        let t = Instant::now();
        let result = (|| -> anyhow::Result<String> {
            if let Some(dir) = output.parent() {
                std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            let photo = crate::photo::read_photo(input, &config.read_limits())?;
            let (w, h) = photo.pixels.dimensions();
            let (tiles, why) = match config.tile {
                Some(0) => (None, "whole photo (--tile 0)".to_string()),
                Some(t) => (Some(crate::upscale::Tiles { size: t, pad: config.tile_pad }), format!("tiles of {t} px (--tile)")),
                None => {
                    let available = probe.sample().map(|s| s.available()).unwrap_or(0);
                    let budget = (available as f64 * args.memory_ratio) as u64;
                    let plan = upscale::plan_tiles(w, h, budget, per_pixel, config.tile_pad, up.multiple());
                    (plan.tiles, plan.reason)
                }
            };
            let result = upscale::upscale_with_retry(&up, &photo.pixels, tiles, config.gpen_exact)?;
            crate::photo::write_photo(output, &result.image, args.format, &photo.meta())?;
            let (ow, oh) = result.image.dimensions();
            let retried = match (result.oom_events, result.tiles) {
                (0, _) => String::new(),
                (n, Some(t)) => format!("; out of memory {n}×, finished in tiles of {} px", t.size),
                (n, None) => format!("; out of memory {n}×"),
            };
            Ok(format!("{w}x{h} -> {ow}x{oh}, {why}{retried}"))
        })();
        match result {
            Ok(what) => {
                done += 1;
                super::output::note(format_args!("{}: {what} in {:.1} s", input.display(), t.elapsed().as_secs_f64()));
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e}", input.display());
            }
        }
    }
    eprintln!("photos upscaled {done}, already done {kept}, failed {failed}");
    Ok(super::exit::of_run(failed > 0, false))
}
