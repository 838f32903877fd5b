//! `identity`: how alike face crops are, by GPEN's identity network (ArcFace IR-SE-50, the
//! network its training measures identity with): the similarity of every pair, and with `--json`
//! the embeddings.

use crate::identity::{IDENTITY_FILE, IdentityNet, UNIT_SIDE, needs_resize, similarity};
use clap::Args;
use image::RgbImage;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Square face crops, e.g. `align` output and the restored faces of `restore --save-faces`. A
    /// side that is a multiple of 256 is measured as it is (GPEN's crops); others are resized to
    /// 256 first.
    #[arg(required = true, value_name = "FACE")]
    pub faces: Vec<PathBuf>,
    /// IR-SE weights (default: model_ir_se50.pth in the models folder; `models download
    /// ArcFace-IR-SE50`).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Print JSON instead: every face with its embedding, and the similarity matrix.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: super::DeviceArg,
}

#[derive(Debug, Serialize)]
struct FaceJson<'a> {
    path: &'a std::path::Path,
    width: u32,
    height: u32,
    /// The side it was resized to before measuring, when it was.
    resized_to: Option<u32>,
    embedding: &'a [f32],
}

#[derive(Debug, Serialize)]
struct IdentityJson<'a> {
    model: String,
    weights: &'a std::path::Path,
    faces: Vec<FaceJson<'a>>,
    /// `similarities[i][j]`: cosine similarity of faces i and j, in [-1, 1].
    similarities: Vec<Vec<f32>>,
}

pub fn run(args: IdentityArgs) -> anyhow::Result<ExitCode> {
    let path = args.weights.clone().unwrap_or_else(|| crate::paths::model_file(IDENTITY_FILE));
    if !path.is_file() {
        return Err(super::exit::usage(crate::paths::missing_addon_help("ArcFace IR-SE-50 (the identity network)", "--weights", &path)));
    }
    let device = args.device.resolve()?;
    let net = IdentityNet::load(&path, device)?;
    let model = crate::identity::check_description(net.config());
    let mut read: Vec<(PathBuf, RgbImage)> = Vec::new();
    let mut failed = 0;
    for face in &args.faces {
        match super::detect::open_rgb(face) {
            Ok(img) => read.push((face.clone(), img)),
            Err(e) => {
                eprintln!("error: {}: {e}", face.display());
                failed += 1;
            }
        }
    }
    for (p, img) in &read {
        if needs_resize(img.width(), img.height()) {
            super::output::note(format_args!(
                "{}: {}x{} is not a square of a multiple of {UNIT_SIDE} px; resized to {UNIT_SIDE}x{UNIT_SIDE} first",
                p.display(),
                img.width(),
                img.height()
            ));
        }
    }
    let refs: Vec<&RgbImage> = read.iter().map(|(_, img)| img).collect();
    let feats = if refs.is_empty() { Vec::new() } else { net.embed(&refs)? };
    let sims: Vec<Vec<f32>> = feats.iter().map(|a| feats.iter().map(|b| similarity(a, b)).collect()).collect();
    if args.json {
        let faces = read
            .iter()
            .zip(&feats)
            .map(|((p, img), e)| FaceJson {
                path: p,
                width: img.width(),
                height: img.height(),
                resized_to: needs_resize(img.width(), img.height()).then_some(UNIT_SIDE),
                embedding: e,
            })
            .collect();
        let out = IdentityJson { model, weights: &path, faces, similarities: sims };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        super::output::note(format_args!("{model} from {} on {}", path.display(), crate::device::device_name(device)));
        if read.len() < 2 {
            super::output::note("one face: nothing to compare it with (--json prints its embedding)");
        }
        for i in 0..read.len() {
            for j in i + 1..read.len() {
                println!("{:.4}\t{}\t{}", sims[i][j], read[i].0.display(), read[j].0.display());
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
