//! Writing a restored photo: atomically (temp file + rename) and with its colour profile and EXIF.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use image::codecs::{jpeg::JpegEncoder, png::PngEncoder, webp::WebPEncoder};
use image::metadata::Orientation;
use image::{ImageEncoder, RgbImage};

use super::error::PhotoError;

/// The file format of a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OutputFormat {
    Png,
    /// `quality` 1–100 (values outside are clamped).
    Jpeg {
        quality: u8,
    },
    /// Lossless only (the image crate has no lossy WebP encoder): expect files larger than JPEG.
    Webp,
}

impl OutputFormat {
    /// JPEG quality when the user names the format without one: high enough that restored skin
    /// texture survives.
    pub const DEFAULT_JPEG_QUALITY: u8 = 95;

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg { .. } => "jpg",
            OutputFormat::Webp => "webp",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    /// `png`, `jpg`/`jpeg` (quality 95) or `webp`, in any case, with or without a leading dot.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "png" => Ok(OutputFormat::Png),
            "jpg" | "jpeg" => Ok(OutputFormat::Jpeg { quality: Self::DEFAULT_JPEG_QUALITY }),
            "webp" => Ok(OutputFormat::Webp),
            _ => Err(format!("unknown output format {s:?}: use png, jpg or webp")),
        }
    }
}

/// Metadata carried from the input photo to the result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhotoMeta {
    /// ICC colour profile, written back unchanged so colours look as in the original.
    pub icc: Option<Vec<u8>>,
    /// Raw EXIF (TIFF structure). Its orientation is reset to 1 on write: the pixels are upright.
    pub exif: Option<Vec<u8>>,
}

/// A JPEG APP1 segment holds at most 65533 bytes, 6 of them the `Exif\0\0` header.
const JPEG_MAX_EXIF: usize = 65533 - 6;

/// Writes `pixels` to `path` as `format` with `meta`. The file appears complete or not at all:
/// on any error nothing is left behind, and an existing file at `path` is untouched.
pub fn write_photo(path: &Path, pixels: &RgbImage, format: OutputFormat, meta: &PhotoMeta) -> Result<(), PhotoError> {
    let icc = meta.icc.clone().filter(|p| !p.is_empty());
    let mut exif = meta.exif.clone().filter(|e| !e.is_empty());
    if let Some(exif) = exif.as_mut() {
        let _ = Orientation::remove_from_exif_chunk(exif);
    }
    // An oversized EXIF block cannot go into a JPEG; losing it beats losing the result.
    if matches!(format, OutputFormat::Jpeg { .. }) && exif.as_ref().is_some_and(|e| e.len() > JPEG_MAX_EXIF) {
        exif = None;
    }
    crate::paths::write_atomically(path, |tmp| {
        let mut out = BufWriter::new(File::create(tmp).map_err(image::ImageError::IoError)?);
        match format {
            OutputFormat::Png => encode(PngEncoder::new(&mut out), pixels, icc, exif)?,
            OutputFormat::Jpeg { quality } => encode(JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100)), pixels, icc, exif)?,
            OutputFormat::Webp => encode(WebPEncoder::new_lossless(&mut out), pixels, icc, exif)?,
        }
        out.flush().map_err(image::ImageError::IoError)
    })
    .map_err(|e| PhotoError::Write { path: path.into(), detail: e.to_string() })
}

fn encode(mut encoder: impl ImageEncoder, pixels: &RgbImage, icc: Option<Vec<u8>>, exif: Option<Vec<u8>>) -> Result<(), image::ImageError> {
    // All three encoders accept both; an unsupported one would only cost the metadata.
    if let Some(icc) = icc {
        let _ = encoder.set_icc_profile(icc);
    }
    if let Some(exif) = exif {
        let _ = encoder.set_exif_metadata(exif);
    }
    let (w, h) = pixels.dimensions();
    encoder.write_image(pixels.as_raw(), w, h, image::ExtendedColorType::Rgb8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_format_parses_names_and_extensions() {
        assert_eq!("png".parse(), Ok(OutputFormat::Png));
        assert_eq!("JPG".parse(), Ok(OutputFormat::Jpeg { quality: 95 }));
        assert_eq!(".jpeg".parse(), Ok(OutputFormat::Jpeg { quality: 95 }));
        assert_eq!("WebP".parse(), Ok(OutputFormat::Webp));
        assert!("gif".parse::<OutputFormat>().unwrap_err().contains("png, jpg or webp"));
        for f in [OutputFormat::Png, OutputFormat::Jpeg { quality: 80 }, OutputFormat::Webp] {
            assert_eq!(f.extension().parse::<OutputFormat>().map(|p| p.extension()), Ok(f.extension()));
        }
    }
}
