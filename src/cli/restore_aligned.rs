//! `restore --aligned`: GPEN's aligned mode, each input already a face crop.

use super::ModelArgs;
use crate::restorer::restore_splitting;
use anyhow::Context;
use clap::Args;
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// File extensions taken from folders given as inputs.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"];

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Photos, or folders of photos (their image files, not recursive).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Inputs are aligned face crops (resized to the model size); restore them whole.
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
}

pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if !args.aligned {
        anyhow::bail!(
            "whole-photo restoration (face detection and paste-back) is not in this build yet; \
             pass --aligned to restore aligned face crops"
        );
    }
    let inputs = expand_inputs(&args.inputs);
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let jobs = plan_outputs(&inputs, &args.output);
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

/// Files as given; folders become their image files in name order. Duplicates are dropped.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for input in inputs {
        let mut files = if input.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(input)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_image_name(p)).collect())
                .unwrap_or_default();
            v.sort();
            v
        } else {
            vec![input.clone()]
        };
        files.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
        out.extend(files);
    }
    out
}

fn is_image_name(p: &Path) -> bool {
    p.is_file()
        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// `OUTDIR/<stem>.png`, made unique when two inputs share a stem (`a.jpg`, `a.png`).
fn plan_outputs(inputs: &[PathBuf], outdir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut used = HashSet::new();
    inputs
        .iter()
        .map(|input| {
            let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "face".into());
            let mut name = format!("{stem}.png");
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{stem}-{n}.png");
                n += 1;
            }
            (input.clone(), outdir.join(name))
        })
        .collect()
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
