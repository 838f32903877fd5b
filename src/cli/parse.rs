//! `parse`: run GPEN's face parser (ParseNet) on face crops and write what the paste uses: the
//! face mask, the labels it came from, and the soft paste mask.

use crate::mask::parser::{FaceParser, MASK_COLORMAP, mask};
use anyhow::Context;
use clap::Args;
use image::GrayImage;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Face crops, e.g. restored faces or `align` output (any size; resized to the parser's).
    #[arg(required = true, value_name = "FACE")]
    pub faces: Vec<PathBuf>,
    /// Folder for NAME_mask.png, NAME_labels.png and NAME_paste.png (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out_dir: PathBuf,
    /// ParseNet weights (default: ParseNet-latest.pth in the models folder).
    #[arg(long, value_name = "FILE")]
    pub parser_weights: Option<PathBuf>,
    #[command(flatten)]
    pub parser_size: super::restore::ParserSizeArg,
    #[command(flatten)]
    pub device: super::DeviceArg,
}

/// Writes, per face: `NAME_mask.png` (0/255 at the parser's size: the face, hair, ears and neck
/// are 255; background, hat and cloth 0), `NAME_labels.png` (the 19 class labels 0-18 as grey
/// levels) and `NAME_paste.png` (the soft paste mask after GPEN's `mask_postprocess`, at the
/// face's size, 0-1 as 0-255).
pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let path = args.parser_weights.clone().unwrap_or_else(|| crate::paths::model_file(crate::config::PARSENET_FILE));
    if !path.is_file() {
        anyhow::bail!(crate::paths::missing_addon_help("ParseNet", "--parser-weights", &path));
    }
    let device = args.device.resolve()?;
    let parser = FaceParser::load(&path, args.parser_size.size, device).map_err(|e| match e {
        crate::mask::parser::ParseError::UnknownSize { .. } => super::exit::usage(e),
        other => other.into(),
    })?;
    std::fs::create_dir_all(&args.out_dir).with_context(|| format!("creating {}", args.out_dir.display()))?;
    let mut failed = 0;
    for face_path in &args.faces {
        let result = (|| -> anyhow::Result<()> {
            let face = super::detect::open_rgb(face_path).map_err(anyhow::Error::msg)?;
            let labels = parser.parse_labels(std::slice::from_ref(&face))?.remove(0);
            let face_mask = GrayImage::from_fn(labels.width(), labels.height(), |x, y| {
                image::Luma([MASK_COLORMAP[labels.get_pixel(x, y)[0] as usize]])
            });
            let p = parser.size();
            let soft = mask::mask_postprocess(&mask::mask_to_unit(&face_mask), p as usize, p as usize, mask::MASK_BORDER);
            let soft = crate::imgproc::resize_linear_f32(&soft, p, p, face.width(), face.height());
            let paste = GrayImage::from_raw(
                face.width(),
                face.height(),
                soft.iter().map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect(),
            )
            .expect("sized buffer");
            let stem = face_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "face".into());
            for (suffix, img) in [("mask", &face_mask), ("labels", &labels), ("paste", &paste)] {
                let out = args.out_dir.join(format!("{stem}_{suffix}.png"));
                crate::paths::write_atomically(&out, |tmp| img.save_with_format(tmp, image::ImageFormat::Png))
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            eprintln!("error: {}: {e:#}", face_path.display());
            failed += 1;
        }
    }
    eprintln!(
        "parsed {} of {} face(s) with ParseNet {} px into {}",
        args.faces.len() - failed,
        args.faces.len(),
        parser.size(),
        args.out_dir.display()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
