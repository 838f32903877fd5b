//! `restore`: whole photos (detect, align, restore, paste back), or with `--aligned` face crops that
//! are already aligned (GPEN's aligned mode).

use super::ModelArgs;
use crate::detect::{DetectOptions, Mtcnn, mtcnn::default_models_dir};
use crate::inputs::{collect_photos, plan_outputs};
use crate::photo::{OutputFormat, ReadLimits};
use crate::pipeline::{Event, Outcome, PipelineOptions, restore_photos};
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
    /// Faces per GPEN call; halved automatically when memory runs out.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub batch: usize,
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
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let gpen = args.model.load()?;
    let options = DetectOptions { min_face_size: args.min_face, ..DetectOptions::default() };
    let detector = Mtcnn::load(&default_models_dir(), gpen.device)?.with_options(options)?;
    let format = match args.format {
        OutputFormat::Jpeg { .. } => OutputFormat::Jpeg { quality: args.quality },
        other => other,
    };
    let pipeline = PipelineOptions {
        out_dir: args.output.clone(),
        batch: args.batch.max(1),
        strength: args.strength,
        format,
        save_faces: args.save_faces,
        overwrite: args.overwrite,
        limits: ReadLimits { max_pixels: (args.max_megapixels * 1e6) as u64, ..ReadLimits::default() },
        device: gpen.device,
    };
    eprintln!(
        "{} photos; {} on {} ({}), batch {}",
        inputs.len(),
        gpen.config(),
        crate::device::device_name(gpen.device),
        gpen.precision,
        pipeline.batch
    );
    let progress = ProgressBar::new(inputs.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} photos, {msg}  {elapsed} elapsed, ETA {eta}").expect("template"),
    );
    let (mut found, mut restored) = (0usize, 0usize);
    progress.set_message("0 of 0 faces");
    let summary = restore_photos(&inputs, &detector, &gpen, &pipeline, &mut |event| match event {
        Event::FacesFound { faces, .. } => {
            found += faces.len();
            progress.set_message(format!("{restored} of {found} faces"));
        }
        Event::BatchDone { faces, failed, .. } => {
            restored += faces - failed;
            progress.set_message(format!("{restored} of {found} faces"));
        }
        Event::PhotoDone { input, outcome, .. } => {
            match outcome {
                Outcome::Failed { error, .. } => progress.suspend(|| eprintln!("error: {}: {error}", input.display())),
                Outcome::NoFaces { .. } => progress.suspend(|| eprintln!("note: {}: no faces found; written unchanged", input.display())),
                _ => {}
            }
            progress.inc(1);
        }
        _ => {}
    });
    progress.finish_and_clear();
    eprintln!("{summary}");
    let t = summary.times;
    let total = t.total().as_secs_f64().max(1e-9);
    let split: Vec<String> =
        t.named().iter().map(|(n, d)| format!("{n} {:.1} s ({:.0} %)", d.as_secs_f64(), 100.0 * d.as_secs_f64() / total)).collect();
    eprintln!("time: {}", split.join(", "));
    Ok(if summary.any_failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// GPEN's aligned mode: every input is a face crop, restored whole and written as PNG.
fn run_aligned(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let inputs = collect_photos(&args.inputs, args.recursive);
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let jobs: Vec<(PathBuf, PathBuf)> = inputs.iter().cloned().zip(plan_outputs(&inputs, &args.output, "png")).collect();
    let gpen = args.model.load()?;
    eprintln!("{} on {} ({}), batch {}", gpen.config(), crate::device::device_name(gpen.device), gpen.precision, args.batch);

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
        if pending.len() >= args.batch.max(1) {
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
    let img = image::ImageReader::open(path)
        .map_err(|e| format!("cannot read: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?
        .decode()
        .map_err(|e| format!("cannot read: not a supported image ({e})"))?
        .to_rgb8();
    Ok(if img.dimensions() == (size, size) {
        img
    } else {
        image::imageops::resize(&img, size, size, image::imageops::FilterType::Triangle)
    })
}
