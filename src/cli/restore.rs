//! `restore`: whole photos (detect, align, restore, paste back), or with `--aligned` face crops that
//! are already aligned (GPEN's aligned mode).

use super::ModelArgs;
use crate::engine::worker::{Command, Components, EngineEvent, EngineSettings, spawn};
use crate::inputs::{collect_photos, plan_outputs};
use crate::photo::OutputFormat;
use crate::restorer::restore_splitting;
use anyhow::Context;
use clap::Args;
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Photos, or folders of photos.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Also take photos from sub-folders of the folders given.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Inputs are aligned face crops (resized to the model size); restore them whole, no detection.
    #[arg(long)]
    pub aligned: bool,
    /// Output folder (created if missing); inputs are never modified.
    #[arg(long, short = 'o', value_name = "OUTDIR")]
    pub output: PathBuf,
    /// Faces per GPEN call, instead of the size planned from free memory (still halved
    /// automatically when memory runs out). Default: planned; 4 with --aligned.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch: Option<usize>,
    /// Share of the free GPU memory (system RAM on the CPU) that batches may use, 0.10-0.95.
    #[arg(long, default_value_t = 0.8, value_name = "R", value_parser = parse_ratio)]
    pub memory_ratio: f64,
    /// Largest batch the planner may choose.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_batch: usize,
    /// Replace results that already exist (by default they are kept, so a rerun resumes).
    #[arg(long)]
    pub overwrite: bool,
    /// How much of the restored face to use: 1 = all, 0 = the original (GPEN's --alpha).
    #[arg(long, default_value_t = 1.0, value_name = "S", value_parser = parse_strength)]
    pub strength: f32,
    /// Output format of restored photos: png, jpg or webp (lossless).
    #[arg(long, default_value = "png", value_name = "FMT")]
    pub format: OutputFormat,
    /// JPEG quality, 1-100.
    #[arg(long, default_value_t = OutputFormat::DEFAULT_JPEG_QUALITY, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Also write each face, aligned input | restored, as NAME_faceNN.png.
    #[arg(long)]
    pub save_faces: bool,
    /// Smallest face to look for, in pixels.
    #[arg(long, default_value_t = 20.0, value_name = "PX")]
    pub min_face: f64,
    /// Refuse photos larger than this many megapixels (protects against decompression bombs).
    #[arg(long, default_value_t = 100.0, value_name = "MP")]
    pub max_megapixels: f64,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.10..=0.95).contains(&v) { Ok(v) } else { Err(format!("memory ratio must be between 0.10 and 0.95, got {v}")) }
}

fn parse_strength(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("strength must be between 0 and 1, got {v}")) }
}

pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if args.aligned {
        return run_aligned(args);
    }
    let inputs = collect_photos(&args.inputs, args.recursive);
    if inputs.is_empty() {
        anyhow::bail!("no photos found in {:?} (looked for {})", args.inputs, crate::inputs::IMAGE_EXTENSIONS.join(", "));
    }
    let weights = args.model.weights_path();
    if !weights.exists() {
        anyhow::bail!(crate::paths::missing_weights_help(&weights));
    }
    args.model.device()?; // applies --threads, checks the device before the worker starts
    let settings = EngineSettings {
        weights,
        device: args.model.device,
        precision: args.model.precision,
        strength: args.strength,
        out_dir: args.output.clone(),
        format: match args.format {
            OutputFormat::Jpeg { .. } => OutputFormat::Jpeg { quality: args.quality },
            other => other,
        },
        save_faces: args.save_faces,
        overwrite: args.overwrite,
        memory_ratio: args.memory_ratio,
        batch_override: args.batch,
        max_batch: args.max_batch,
        min_face: args.min_face,
        max_megapixels: args.max_megapixels,
        preview_side: 0, // the terminal shows no images
        ..EngineSettings::default()
    };
    let engine = spawn(settings, Components::real(), Box::new(|| {}));
    // Ctrl-C cancels like the window's Cancel button: the batch in flight finishes, photos in
    // flight are dropped, nothing partial is written. A second Ctrl-C exits at once.
    let commands = engine.commands.clone();
    let interrupted = std::sync::atomic::AtomicBool::new(false);
    let _ = ctrlc::set_handler(move || {
        if interrupted.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ncancelling after the current batch (Ctrl-C again to quit at once)");
        let _ = commands.send(Command::Cancel);
    });
    engine.send(Command::Enqueue(inputs.clone()));
    engine.send(Command::Start);

    let progress = ProgressBar::new(inputs.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} photos, {msg}  {elapsed} elapsed, ETA {eta}").expect("template"),
    );
    let mut names = std::collections::HashMap::new();
    let mut model_error = None;
    let summary = loop {
        let Ok(event) = engine.events.recv() else { anyhow::bail!("the worker stopped unexpectedly") };
        match event {
            EngineEvent::Queued { id, path } => {
                names.insert(id, path);
            }
            EngineEvent::ModelLoaded { config, device, precision } => {
                progress.suspend(|| eprintln!("{} photos; {config} on {device} ({precision})", inputs.len()));
            }
            EngineEvent::Recommendation { batch, reason } => {
                progress.suspend(|| eprintln!("batch {batch}: {reason}"));
            }
            EngineEvent::Progress(p) => {
                progress.set_length(p.photos_total as u64);
                progress.set_position(p.photos_done as u64);
                progress.set_message(format!("{} of {} faces, {:.2} faces/s", p.faces_done, p.faces_total, p.faces_per_second));
            }
            EngineEvent::PhotoFailed { id, error } => {
                let path: &PathBuf = &names[&id];
                progress.suspend(|| eprintln!("error: {}: {}", path.display(), without_path(&error, path)));
            }
            EngineEvent::PhotoWithoutFaces { id, .. } => {
                progress.suspend(|| eprintln!("note: {}: no faces found; written unchanged", names[&id].display()));
            }
            EngineEvent::OomRecovered { from, to } => {
                progress.suspend(|| eprintln!("out of memory with {from} faces; retrying with {to}"));
            }
            EngineEvent::CpuFallback { id, face } => {
                progress.suspend(|| eprintln!("warning: {} face {face} did not fit the GPU alone; restored on the CPU", names[&id].display()));
            }
            EngineEvent::ModelError(e) => model_error = Some(e),
            EngineEvent::Finished(summary) => break summary,
            _ => {}
        }
    };
    progress.finish_and_clear();
    engine.shutdown();
    if let Some(e) = model_error {
        anyhow::bail!(e);
    }
    eprintln!("{summary}");
    let t = summary.times;
    let total = t.total().as_secs_f64().max(1e-9);
    let split: Vec<String> =
        t.named().iter().map(|(n, d)| format!("{n} {:.1} s ({:.0} %)", d.as_secs_f64(), 100.0 * d.as_secs_f64() / total)).collect();
    eprintln!("time: {}", split.join(", "));
    Ok(if summary.any_failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A photo's error names its file already (`PATH: what is wrong`); the CLI's line names it once.
fn without_path<'a>(error: &'a str, path: &Path) -> &'a str {
    error.strip_prefix(&format!("{}: ", path.display())).unwrap_or(error)
}

/// GPEN's aligned mode: every input is a face crop, restored whole and written as PNG.
fn run_aligned(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let inputs = collect_photos(&args.inputs, args.recursive);
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let jobs: Vec<(PathBuf, PathBuf)> = inputs.iter().cloned().zip(plan_outputs(&inputs, &args.output, "png")).collect();
    let gpen = args.model.load()?;
    eprintln!("{} on {} ({}), batch {}", gpen.config(), crate::device::device_name(gpen.device), gpen.precision, args.batch.unwrap_or(4));

    let progress = ProgressBar::new(jobs.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} faces  {elapsed} elapsed, ETA {eta}  {msg}").expect("template"),
    );
    let mut failed = Vec::<(PathBuf, String)>::new();
    let (mut restored, mut skipped) = (0usize, 0usize);
    let mut pending: Vec<(PathBuf, PathBuf, RgbImage)> = Vec::new();
    let mut flush = |pending: &mut Vec<(PathBuf, PathBuf, RgbImage)>, failed: &mut Vec<(PathBuf, String)>| {
        let faces: Vec<&RgbImage> = pending.iter().map(|(_, _, img)| img).collect();
        let results = restore_splitting(&gpen, &faces);
        for ((input, output, _), result) in pending.drain(..).zip(results) {
            let saved = result.and_then(|face| {
                crate::paths::write_atomically(&output, |tmp| face.save_with_format(tmp, image::ImageFormat::Png))
                    .map_err(|e| format!("writing {}: {e}", output.display()))
            });
            match saved {
                Ok(()) => restored += 1,
                Err(e) => {
                    progress.suspend(|| eprintln!("error: {}: {e}", input.display()));
                    failed.push((input, e));
                }
            }
            progress.inc(1);
        }
    };
    for (input, output) in jobs {
        if crate::paths::same_file(&input, &output) {
            let e = "the output would replace the input; choose another output folder".to_string();
            progress.suspend(|| eprintln!("error: {}: {e}", input.display()));
            failed.push((input, e));
            progress.inc(1);
            continue;
        }
        if output.exists() && !args.overwrite {
            skipped += 1;
            progress.inc(1);
            continue;
        }
        match read_face(&input, gpen.size()) {
            Ok(face) => pending.push((input, output, face)),
            Err(e) => {
                progress.suspend(|| eprintln!("error: {}: {e}", input.display()));
                failed.push((input, e));
                progress.inc(1);
                continue;
            }
        }
        if pending.len() >= args.batch.unwrap_or(4) {
            flush(&mut pending, &mut failed);
        }
    }
    flush(&mut pending, &mut failed);
    progress.finish_and_clear();

    eprintln!("restored {restored}, already done {skipped}, failed {}", failed.len());
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Decodes a crop and resizes it to the model size (bilinear, as GPEN's `cv2.resize`).
fn read_face(path: &Path, size: u32) -> Result<RgbImage, String> {
    // The photo reader: EXIF orientation, pixel-format conversion, size limits, no panics.
    let img = crate::photo::read_photo(path, &crate::photo::ReadLimits::default())
        .map_err(|e| format!("cannot read: {}", without_path(&e.to_string(), path)))?
        .pixels;
    Ok(if img.dimensions() == (size, size) {
        img
    } else {
        image::imageops::resize(&img, size, size, image::imageops::FilterType::Triangle)
    })
}
