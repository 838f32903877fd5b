//! `upscale`: background super-resolution of whole photos, no faces — GPEN's RealESRNet (or another
//! RRDBNet file) through the engine in its upscale-only mode: tiles planned from free memory like
//! `restore`'s batches, halved on out-of-memory, results written atomically, a rerun resumes.

use super::restore::SrArgs;
use crate::config::{self, RunConfig, Workers};
use crate::engine::worker::{Components, EngineEvent, spawn};
use crate::photo::OutputFormat;
use crate::pipeline::Outcome;
use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
    /// Factor: 1, 2 or 4 (GPEN's realesrnet_xS.pth from the models folder). Default: the scale of
    /// the --sr-weights file, read from its shapes; ×2 without one.
    #[arg(long, value_name = "S")]
    pub scale: Option<u32>,
    #[command(flatten)]
    pub sr_args: SrArgs,
    /// Share of the free GPU memory (system RAM on the CPU) that tiles may use, 0.10-0.95.
    #[arg(long, default_value_t = crate::config::DEFAULT_MEMORY_RATIO, value_name = "R", value_parser = config::parse_memory_ratio)]
    pub memory_ratio: f64,
    /// Output format: png, jpg, webp, tiff (deflate) or tiff-lzw.
    #[arg(long, default_value = "png", value_name = "FMT")]
    pub format: OutputFormat,
    /// Replace results that already exist (by default they are kept, so a rerun resumes).
    #[arg(long)]
    pub overwrite: bool,
    /// Leave the original's EXIF and XMP out of the results, and say nothing of what was done.
    #[arg(long)]
    pub strip_metadata: bool,
    #[command(flatten)]
    pub device: super::DeviceArg,
}

pub fn run(args: UpscaleArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.resolve()?;
    // The scale the file was trained for, unless the user names one (a missing file is reported
    // below, by the configuration).
    let scale = match (args.scale, &args.sr_args.sr_weights) {
        (Some(s), _) => s,
        (None, Some(path)) if path.is_file() => crate::upscale::read_config(path)?.scale,
        (None, _) => 2,
    };
    let config = args.sr_args.apply(RunConfig {
        upscale: Some(scale),
        upscale_only: true,
        out_dir: args.output.clone(),
        format: args.format,
        overwrite: args.overwrite,
        strip_metadata: args.strip_metadata,
        memory_ratio: args.memory_ratio,
        device: args.device.choice,
        workers: Workers::Fixed(1),
        preview_side: 0,
        ..RunConfig::default()
    });
    config.validate().map_err(super::exit::usage)?;
    let path = config.resolve().map_err(super::exit::usage)?.upscaler.expect("upscale is set");
    // The file's own scale, from its shapes, before anything is loaded or read.
    let c = crate::upscale::read_config(&path)?;
    if c.scale != scale {
        anyhow::bail!("{} upscales ×{}, not ×{scale}; pass --scale {} or another --sr-weights", path.display(), c.scale, c.scale);
    }
    let found = crate::archive::inputs::find_photos(&args.inputs, args.recursive, Some(&args.output));
    if found.photos.is_empty() {
        anyhow::bail!("no photos found in {:?} (looked for {})", args.inputs, crate::archive::inputs::IMAGE_EXTENSIONS.join(", "));
    }
    super::output::note(format_args!(
        "{} photos; RRDBNet ×{} ({} features, {} blocks, {}) on {}",
        found.photos.len(),
        c.scale,
        c.num_feat,
        c.num_block,
        path.display(),
        crate::device::device_name(device)
    ));
    let inputs: Vec<PathBuf> = found.photos.iter().map(|p| p.path.clone()).collect();
    let mut lines = PhotoLines::default();
    let (mut done, mut kept, mut failed, mut cancelled) = (0, 0, 0, 0);
    let engine = spawn(config, Components::real(), Box::new(|| {}));
    super::ctrl_c::cancel_on_ctrl_c(engine.commands.clone(), "cancelling: the photo being upscaled stops within one block of the network");
    let ended = engine.run_to_end(found.photos, |event| match event {
        EngineEvent::TilePlan { reason, .. } => lines.plan = reason.clone(),
        EngineEvent::PhotoStarted { id } => lines.started(*id),
        EngineEvent::SrOomRecovered { id, oom_events, tile } => lines.recovered(*id, *oom_events, *tile),
        EngineEvent::PhotoEnded { id, outcome, .. } => {
            let input = &inputs[*id as usize];
            match outcome {
                Outcome::NoFaces { output } | Outcome::Restored { output, .. } => {
                    done += 1;
                    super::output::note(format_args!("{}: {}", input.display(), lines.ended(*id, input, output)));
                }
                Outcome::AlreadyDone { .. } => kept += 1,
                Outcome::Failed { error, .. } => {
                    failed += 1;
                    eprintln!("error: {}: {error}", input.display());
                }
                Outcome::Cancelled => cancelled += 1,
            }
        }
        _ => {}
    });
    if let Some(e) = ended.setup_error {
        if e.is_usage() {
            return Err(super::exit::usage(e));
        }
        anyhow::bail!(e);
    }
    let not_done = if cancelled > 0 { format!(", cancelled {cancelled} (a rerun resumes)") } else { String::new() };
    eprintln!("photos upscaled {done}, already done {kept}, failed {failed}{not_done}");
    Ok(super::exit::of_run(failed > 0, cancelled > 0))
}

/// What the per-photo line says: the tile plan the photo started with, its out-of-memory retries and
/// its time.
#[derive(Default)]
struct PhotoLines {
    /// The engine's latest tile plan: the one each photo starts with.
    plan: String,
    started: HashMap<u64, (Instant, String)>,
    retried: HashMap<u64, String>,
}

impl PhotoLines {
    fn started(&mut self, id: u64) {
        self.started.insert(id, (Instant::now(), self.plan.clone()));
    }

    fn recovered(&mut self, id: u64, oom_events: usize, tile: Option<u32>) {
        self.retried.insert(id, format!("; {}", crate::upscale::describe_recovery(oom_events, tile)));
    }

    /// `WxH -> WxH, <plan><retries> in S s`, the sizes read from the files' headers.
    fn ended(&mut self, id: u64, input: &Path, output: &Path) -> String {
        let dims = |p: &Path| image::image_dimensions(p).map_or("?".to_string(), |(w, h)| format!("{w}x{h}"));
        let (since, plan) = self.started.remove(&id).unwrap_or_else(|| (Instant::now(), String::new()));
        let retried = self.retried.remove(&id).unwrap_or_default();
        format!("{} -> {}, {plan}{retried} in {:.1} s", dims(input), dims(output), since.elapsed().as_secs_f64())
    }
}
