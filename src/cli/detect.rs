//! `detect`: find faces (RetinaFace or MTCNN) and print their boxes, scores and landmarks; the
//! `--json` output is what `restore --faces` reads back.

use crate::config::{ConfigError, DetectorUse, RunConfig};
use crate::detect::{DetectOptions, Face, FaceDetector, Mtcnn, RetinaFace, mtcnn};
use clap::Args;
use image::RgbImage;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Photos to search for faces.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Print one JSON object keyed by file name: width, height and faces (box, score, landmarks).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub face_args: super::restore::FaceArgs,
    /// MTCNN: smallest face side looked for, in pixels.
    #[arg(long, default_value_t = crate::config::DEFAULT_MIN_FACE, value_name = "PX")]
    pub min_face: f64,
    /// MTCNN: score thresholds of the P-Net, R-Net and O-Net stages.
    #[arg(long, default_value = "0.6,0.7,0.7", value_parser = parse_thresholds, value_name = "A,B,C")]
    pub thresholds: [f32; 3],
    #[command(flatten)]
    pub device: super::DeviceArg,
    /// Folder with facenet-pytorch's pnet.pt, rnet.pt and onet.pt (default: $GPEN_MTCNN_DIR, else
    /// the installed package's, the repository's models/mtcnn, or <data dir>/mtcnn; `models list` shows it).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
}

/// One image's entry in the `--json` output (the layout of golden/mtcnn/detections.json).
#[derive(Debug, Serialize)]
struct ImageFaces {
    width: u32,
    height: u32,
    faces: Vec<Face>,
}

pub fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let options = DetectOptions { min_face_size: args.min_face, thresholds: args.thresholds, ..DetectOptions::default() };
    let device = args.device.resolve()?;
    let choice =
        RunConfig { detector: args.face_args.detector, detector_weights: args.face_args.detector_weights.clone(), ..RunConfig::default() };
    let detector: Box<dyn FaceDetector> = match choice.resolve().map_err(anyhow::Error::msg)?.detector {
        DetectorUse::RetinaFace(path) => {
            let r = RetinaFace::load(&path, device)?.with_threshold(args.face_args.threshold)?;
            super::output::note(format_args!(
                "detector: RetinaFace {} ({}), threshold {}",
                r.backbone().name(),
                path.display(),
                r.threshold()
            ));
            Box::new(r)
        }
        DetectorUse::Mtcnn => {
            let dir = args.models.clone().unwrap_or_else(mtcnn::default_models_dir);
            Box::new(Mtcnn::load(&dir, device)?.with_options(options)?)
        }
    };

    let mut stdout = std::io::stdout().lock();
    let mut report = BTreeMap::new();
    let mut failed = 0usize;
    for path in &args.images {
        let result = open_rgb(path).and_then(|img| {
            let faces = detector.detect(&img)?;
            Ok(ImageFaces { width: img.width(), height: img.height(), faces })
        });
        match result {
            Ok(found) => {
                if !args.json && !printed(print_faces(&mut stdout, path, &found))? {
                    break;
                }
                report.insert(report_key(path, &report), found);
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    if args.json {
        printed(writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?))?;
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The file name, or the whole path when another input already has that name.
fn report_key(path: &Path, report: &BTreeMap<String, ImageFaces>) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.is_empty() || report.contains_key(&name) { path.display().to_string() } else { name }
}

/// False when the reader of our output has gone (`detect ... | head`): not an error, just stop.
fn printed(result: std::io::Result<()>) -> std::io::Result<bool> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        other => other.map(|()| true),
    }
}

fn print_faces(out: &mut impl Write, path: &Path, found: &ImageFaces) -> std::io::Result<()> {
    let n = found.faces.len();
    writeln!(out, "{}: {}x{}, {n} face{}", path.display(), found.width, found.height, if n == 1 { "" } else { "s" })?;
    for (i, f) in found.faces.iter().enumerate() {
        let [x1, y1, x2, y2] = f.bbox;
        let points: Vec<String> = f.landmarks.iter().map(|[x, y]| format!("({x:.1}, {y:.1})")).collect();
        writeln!(
            out,
            "  face {i}: box ({x1:.1}, {y1:.1})-({x2:.1}, {y2:.1})  score {:.4}  eyes {} {}  nose {}  mouth {} {}",
            f.score, points[0], points[1], points[2], points[3], points[4]
        )?;
    }
    Ok(())
}

/// Decodes an image like PIL's `Image.open(p).convert('RGB')`: alpha dropped (not blended), grey
/// expanded to three channels.
pub fn open_rgb(path: &Path) -> anyhow::Result<RgbImage> {
    Ok(image::ImageReader::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read: {e}"))?
        .with_guessed_format()
        .map_err(|e| anyhow::anyhow!("cannot read: {e}"))?
        .decode()
        .map_err(|e| anyhow::anyhow!("cannot read: not a supported image ({e})"))?
        .to_rgb8())
}

fn parse_thresholds(s: &str) -> Result<[f32; 3], ConfigError> {
    let bad = ConfigError::BadValue;
    let values: Vec<f32> =
        s.split(',').map(|v| v.trim().parse::<f32>().map_err(|_| bad(format!("'{v}' is not a number")))).collect::<Result<_, _>>()?;
    let values: [f32; 3] = values.try_into().map_err(|_| bad(format!("expected three comma-separated thresholds, got '{s}'")))?;
    if values.iter().any(|t| !(0.0..=1.0).contains(t)) {
        return Err(bad(format!("thresholds are probabilities in [0, 1], got '{s}'")));
    }
    Ok(values)
}
