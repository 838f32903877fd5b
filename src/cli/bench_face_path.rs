//! `bench face-path`: what GPEN's own face path costs beside ours, back to back in one process:
//! detection with MTCNN and with RetinaFace on the same photos, and the paste mask per face (the
//! ParseNet forward pass, then GPEN's mask post-processing) against the feathered rectangle.
//! Speed does not depend on the weights' values, so the golden random-weight files (or the
//! released parser's shapes with placeholder weights) measure what the released files cost.

use crate::detect::{FaceDetector, Mtcnn, RetinaFace, mtcnn};
use crate::mask::parser::{FaceParser, ParseNetConfig, mask};
use clap::Args;
use image::RgbImage;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Args)]
// Timed on the CPU unless asked otherwise.
#[command(mut_arg("device", |a| a.default_value("cpu")))]
pub struct FacePathBenchArgs {
    /// Photos to detect on.
    #[arg(long, num_args = 1.., value_name = "IMAGE", default_values = ["../shared/photos/solvay_1927.png", "../shared/photos/astronaut.png"])]
    pub photos: Vec<PathBuf>,
    /// RetinaFace weights to time (ResNet-50 or MobileNet-0.25); several may be given.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub retinaface: Vec<PathBuf>,
    /// ParseNet weights to time; default: the released configuration's shapes at 512 px with
    /// placeholder weights.
    #[arg(long, value_name = "FILE")]
    pub parser_weights: Option<PathBuf>,
    #[command(flatten)]
    pub parser_size: super::restore::ParserSizeArg,
    /// Faces per parser call, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4", value_name = "N,...")]
    pub batch: Vec<usize>,
    /// Timed runs after one warm-up; the median is reported.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeat: usize,
    #[command(flatten)]
    pub device: super::DeviceArg,
}

/// Median wall time of `repeat` runs of `f` after one warm-up, in seconds, and the last result.
pub(super) fn timed<T>(repeat: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut out = f()?;
    let mut times = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        out = f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], out))
}

pub fn run(args: FacePathBenchArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.resolve()?;
    println!(
        "bench face-path: device {}, libtorch {} ({} intra-op threads), median of {} runs after a warm-up",
        crate::device::device_name(device),
        crate::sys::runtime_versions::libtorch_version(),
        tch::get_num_threads(),
        args.repeat
    );
    let photos: Vec<(String, RgbImage)> = args
        .photos
        .iter()
        .map(|p| {
            Ok((
                p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                super::detect::open_rgb(p).map_err(anyhow::Error::msg)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut detectors: Vec<(String, Box<dyn FaceDetector>)> =
        vec![("MTCNN".into(), Box::new(Mtcnn::load(&mtcnn::default_models_dir(), device)?))];
    for path in &args.retinaface {
        let r = RetinaFace::load(path, device)?;
        detectors.push((format!("RetinaFace {}", r.backbone().name()), Box::new(r)));
    }
    println!("{:<26} {:<22} {:>11} {:>10} {:>6}", "detector", "photo", "size", "ms", "faces");
    for (name, det) in &detectors {
        for (photo, img) in &photos {
            let (s, faces) = timed(args.repeat, || Ok(det.detect(img)?))?;
            println!("{name:<26} {photo:<22} {:>11} {:>10.1} {:>6}", format!("{}x{}", img.width(), img.height()), s * 1e3, faces.len());
        }
    }

    let size = args.parser_size.size;
    let released_size = size.unwrap_or(crate::mask::parser::RELEASED_SIZE);
    let (parser, unfolded) = match &args.parser_weights {
        Some(p) => (FaceParser::load(p, size, device)?, FaceParser::load_unfolded(p, size, device)?),
        None => (
            FaceParser::with_config(ParseNetConfig::RELEASED, released_size, device)?,
            FaceParser::with_config_unfolded(ParseNetConfig::RELEASED, released_size, device)?,
        ),
    };
    let p = parser.size();
    let what = if args.parser_weights.is_some() { "from the file" } else { "released shapes, placeholder weights" };
    println!("\nmask per face, {p} px faces (ParseNet {p} px, {what})");
    println!("{:<40} {:>6} {:>12}", "step", "batch", "ms per face");
    let face = photos
        .first()
        .map(|(_, img)| image::imageops::resize(img, p, p, image::imageops::FilterType::Triangle))
        .unwrap_or_else(|| RgbImage::new(p, p));
    // Back to back: the inference form the product runs, then the checkpoint's layers as the
    // authors' code runs them (every BatchNorm, the upsampled copies).
    for &n in &args.batch {
        let faces = vec![face.clone(); n.max(1)];
        for (what, net) in [("ParseNet forward + argmax", &parser), ("  unfolded (the authors' layers)", &unfolded)] {
            let (s, _) = timed(args.repeat, || Ok(net.parse_batch(&faces)?))?;
            println!("{what:<40} {:>6} {:>12.1}", n, s * 1e3 / n.max(1) as f64);
        }
    }
    let parsed = parser.parse(std::slice::from_ref(&face))?.remove(0);
    let (s, _) =
        timed(args.repeat, || Ok(mask::mask_postprocess(&mask::mask_to_unit(&parsed), p as usize, p as usize, mask::MASK_BORDER)))?;
    println!("{:<40} {:>6} {:>12.1}", "mask_postprocess (border, 2 blurs)", 1, s * 1e3);
    let (s, _) = timed(args.repeat, || Ok(crate::pipeline::paste::crop_mask(p)))?;
    println!("{:<40} {:>6} {:>12.1}", "feathered rectangle (once per run)", 1, s * 1e3);
    Ok(ExitCode::SUCCESS)
}
