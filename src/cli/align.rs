//! `align`: cut GPEN-aligned face crops out of a photo, with the transforms that put them back.

use crate::align::{self, AlignedFace, Landmarks};
use crate::config::RunConfig;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AlignArgs {
    /// The photo (an alpha channel is dropped).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Side of the square crops in pixels (the GPEN model's size: 256, 512, 1024, 2048).
    #[arg(long, default_value_t = 512, value_name = "S")]
    pub size: u32,
    /// Folder for faceNN.png and alignment.json (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Face landmarks: a detections file keyed by image file name, each with `faces[].landmarks`
    /// (5 x [x, y]), or a file with a top-level `faces` list. Default: detect the faces.
    #[arg(long, value_name = "FILE.json")]
    pub landmarks: Option<PathBuf>,
    #[command(flatten)]
    pub face_args: super::restore::FaceArgs,
    #[command(flatten)]
    pub device: super::DeviceArg,
}

pub fn run(args: AlignArgs) -> anyhow::Result<ExitCode> {
    if args.size < 16 {
        bail!("--size {} is too small for a face crop", args.size);
    }
    let photo = crate::photo::read_photo(&args.image, &Default::default())?.pixels;
    let device = args.device.resolve()?;
    let faces = match &args.landmarks {
        Some(file) => read_landmarks(file, &args.image)?,
        None => {
            let detector = args.face_args.apply(RunConfig::default()).resolve()?.load_detector(device).map_err(anyhow::Error::msg)?;
            detector.detect(&photo)?.into_iter().map(|f| f.landmarks).collect()
        }
    };
    let aligned =
        align::align_faces(&photo, &faces, args.size, device).with_context(|| format!("aligning the faces of {}", args.image.display()))?;

    std::fs::create_dir_all(&args.out_dir).with_context(|| format!("creating {}", args.out_dir.display()))?;
    for (i, face) in aligned.iter().enumerate() {
        let path = args.out_dir.join(format!("face{i:02}.png"));
        crate::paths::write_atomically(&path, |tmp| face.crop.save_with_format(tmp, image::ImageFormat::Png))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let report = alignment_json(&args.image, args.size, &faces, &aligned);
    let path = args.out_dir.join("alignment.json");
    crate::paths::write_atomically(&path, |tmp| std::fs::write(tmp, serde_json::to_string_pretty(&report).expect("plain JSON")))
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("aligned {} face(s) of {} into {}", aligned.len(), args.image.display(), args.out_dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The landmarks of `image`'s faces, in file order.
fn read_landmarks(file: &Path, image: &Path) -> anyhow::Result<Vec<Landmarks>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let root: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let entry = if root.get("faces").is_some() {
        &root
    } else {
        root.get(&name).with_context(|| {
            let keys: Vec<&str> = root.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
            format!("{} has no entry for '{name}' (it lists: {})", file.display(), keys.join(", "))
        })?
    };
    let faces = entry["faces"].as_array().with_context(|| format!("{}: '{name}' has no faces list", file.display()))?;
    faces
        .iter()
        .enumerate()
        .map(|(i, face)| {
            serde_json::from_value::<Landmarks>(face["landmarks"].clone())
                .with_context(|| format!("{}: face {i} of '{name}' needs landmarks as 5 x [x, y]", file.display()))
        })
        .collect()
}

/// `alignment.json`: the schema of the golden `*_alignment.json`, plus `template` under a size-free key.
fn alignment_json(image: &Path, size: u32, landmarks: &[Landmarks], faces: &[AlignedFace]) -> Value {
    let template = json!(align::reference_template(size));
    let mut root = Map::new();
    root.insert("image".into(), json!(image.file_name().map(|n| n.to_string_lossy())));
    root.insert("size".into(), json!(size));
    root.insert("template".into(), template.clone());
    root.insert(format!("template_{size}"), template);
    let faces: Vec<Value> =
        landmarks.iter().zip(faces).map(|(l, f)| json!({ "landmarks": l, "tfm": f.tfm.m, "tfm_inv": f.tfm_inv.m })).collect();
    root.insert("faces".into(), Value::Array(faces));
    Value::Object(root)
}
