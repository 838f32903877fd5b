//! Writing a restored photo: atomically (temp file + rename) and with what the original carried —
//! its colour profile, EXIF, resolution and transparency, where the output format can hold them.

use std::path::Path;
use std::str::FromStr;

use image::codecs::jpeg::{JpegEncoder, PixelDensity, PixelDensityUnit};
use image::codecs::{png::PngEncoder, webp::WebPEncoder};
use image::metadata::Orientation;
use image::{GrayImage, ImageBuffer, ImageEncoder, Luma, Rgb, RgbImage};

/// A 16-bit photo's colour samples.
pub type Rgb16Image = ImageBuffer<Rgb<u16>, Vec<u16>>;
/// A 16-bit photo's transparency.
pub type Gray16Image = ImageBuffer<Luma<u16>, Vec<u16>>;

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
    /// TIFF, losslessly compressed, for archives.
    Tiff {
        compression: TiffCompression,
    },
}

/// How a TIFF result is compressed (both lossless).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TiffCompression {
    /// Deflate (zip), the smaller.
    Deflate,
    /// LZW, for readers that know no other.
    Lzw,
}

impl OutputFormat {
    /// JPEG quality when the user names the format without one: high enough that restored skin
    /// texture survives.
    pub const DEFAULT_JPEG_QUALITY: u8 = 95;

    /// Whether results in this format keep a 16-bit photo's samples (PNG and TIFF do).
    pub fn holds_16_bits(self) -> bool {
        matches!(self, OutputFormat::Png | OutputFormat::Tiff { .. })
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg { .. } => "jpg",
            OutputFormat::Webp => "webp",
            OutputFormat::Tiff { .. } => "tif",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    /// `png`, `jpg`/`jpeg` (quality 95), `webp`, `tiff`/`tif` (deflate) or `tiff-lzw`, in any
    /// case, with or without a leading dot.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "png" => Ok(OutputFormat::Png),
            "jpg" | "jpeg" => Ok(OutputFormat::Jpeg { quality: Self::DEFAULT_JPEG_QUALITY }),
            "webp" => Ok(OutputFormat::Webp),
            "tif" | "tiff" => Ok(OutputFormat::Tiff { compression: TiffCompression::Deflate }),
            "tiff-lzw" => Ok(OutputFormat::Tiff { compression: TiffCompression::Lzw }),
            _ => Err(format!("unknown output format {s:?}: use png, jpg, webp, tiff or tiff-lzw")),
        }
    }
}

/// What is carried from the input photo to the result besides its colour pixels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhotoMeta {
    /// ICC colour profile, written back unchanged so colours look as in the original.
    pub icc: Option<Vec<u8>>,
    /// Raw EXIF (TIFF structure). Its orientation is reset to 1 on write: the pixels are upright.
    pub exif: Option<Vec<u8>>,
    /// Resolution, written as JFIF density (JPEG) or `pHYs` (PNG); WebP has no field for it.
    pub density: Option<super::Density>,
    /// Transparency at the result's size, written by PNG and WebP (JPEG has none).
    pub alpha: Option<GrayImage>,
    /// The original's XMP packet (captions, people, keywords), carried into every format.
    pub xmp: Option<Vec<u8>>,
    /// What was done to the photo: the result names gpen-studio as its `Software` (EXIF) and
    /// gains this entry in its XMP history. `None` (`--strip-metadata`, face tools): nothing said.
    pub history: Option<super::HistoryEntry>,
}

/// The XMP namespace that opens a JPEG's XMP segment.
const JPEG_XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// What results name as the program that wrote them.
pub fn software() -> String {
    format!("gpen-studio {}", env!("CARGO_PKG_VERSION"))
}

/// A JPEG APP1 segment holds at most 65533 bytes, 6 of them the `Exif\0\0` header.
const JPEG_MAX_EXIF: usize = 65533 - 6;

/// Writes `pixels` to `path` as `format` with `meta`. The file appears complete or not at all:
/// on any error nothing is left behind, and an existing file at `path` is untouched.
pub fn write_photo(path: &Path, pixels: &RgbImage, format: OutputFormat, meta: &PhotoMeta) -> Result<(), PhotoError> {
    write_pixels(path, Pixels::Eight(pixels), format, meta)
}

/// As [`write_photo`], for 16-bit samples (and their own 16-bit transparency, which takes the place
/// of `meta`'s): PNG and TIFF keep every bit; JPEG and WebP get them rounded to 8 bits.
pub fn write_photo16(
    path: &Path,
    rgb: &Rgb16Image,
    alpha: Option<&Gray16Image>,
    format: OutputFormat,
    meta: &PhotoMeta,
) -> Result<(), PhotoError> {
    if format.holds_16_bits() {
        return write_pixels(path, Pixels::Sixteen(rgb, alpha), format, meta);
    }
    let eight = |v: u16| ((v as u32 + 128) / 257) as u8;
    let rgb8 = RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| Rgb(rgb.get_pixel(x, y).0.map(eight)));
    let alpha8 = alpha.map(|a| GrayImage::from_fn(a.width(), a.height(), |x, y| Luma([eight(a.get_pixel(x, y)[0])])));
    write_pixels(path, Pixels::Eight(&rgb8), format, &PhotoMeta { alpha: alpha8, ..meta.clone() })
}

/// The samples of a result.
#[derive(Clone, Copy)]
pub(super) enum Pixels<'a> {
    Eight(&'a RgbImage),
    /// A 16-bit photo's, with its own transparency.
    Sixteen(&'a Rgb16Image, Option<&'a Gray16Image>),
}

fn write_pixels(path: &Path, pixels: Pixels, format: OutputFormat, meta: &PhotoMeta) -> Result<(), PhotoError> {
    let icc = meta.icc.clone().filter(|p| !p.is_empty());
    let mut exif = meta.exif.clone().filter(|e| !e.is_empty());
    if let Some(exif) = exif.as_mut() {
        let _ = Orientation::remove_from_exif_chunk(exif);
    }
    let (exif, xmp) = match &meta.history {
        Some(entry) => {
            let xmp = super::xmp::with_history(meta.xmp.as_deref(), entry, &software());
            (Some(super::exif_edit::with_software(exif, &software(), meta.density)), Some(xmp))
        }
        None => (exif, meta.xmp.clone().filter(|x| !x.is_empty())),
    };
    let mut exif = exif;
    // An oversized EXIF block cannot go into a JPEG; losing it beats losing the result.
    if matches!(format, OutputFormat::Jpeg { .. }) && exif.as_ref().is_some_and(|e| e.len() > JPEG_MAX_EXIF) {
        exif = None;
    }
    // Transparency only where the format holds it, and only of the result's size.
    let size = match pixels {
        Pixels::Eight(p) => p.dimensions(),
        Pixels::Sixteen(p, _) => p.dimensions(),
    };
    let alpha = meta.alpha.as_ref().filter(|a| a.dimensions() == size && !matches!(format, OutputFormat::Jpeg { .. }));
    let layers = Layers { pixels, alpha, size };
    crate::paths::write_atomically(path, |tmp| {
        let mut bytes = Vec::new();
        match format {
            OutputFormat::Png => {
                encode(PngEncoder::new(&mut bytes), &layers, icc, exif)?;
                if let Some(density) = meta.density {
                    bytes = super::density::with_png_density(bytes, density);
                }
                if let Some(xmp) = &xmp {
                    bytes = super::chunks::with_png_chunk(bytes, *b"iTXt", &super::chunks::itxt("XML:com.adobe.xmp", xmp));
                }
            }
            OutputFormat::Jpeg { quality } => {
                let mut encoder = JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100));
                if let Some(density) = meta.density {
                    encoder.set_pixel_density(PixelDensity { density: density.jfif(), unit: PixelDensityUnit::Inches });
                }
                encode(encoder, &layers, icc, exif)?;
                // A packet over one segment (64 KiB; XMP's extended form is not written) is left out.
                if let Some(with) =
                    xmp.as_ref().and_then(|x| super::chunks::with_jpeg_segment(&bytes, 0xE1, &[JPEG_XMP_HEADER, x].concat()))
                {
                    bytes = with;
                }
            }
            OutputFormat::Tiff { compression } => {
                let texts = exif.as_deref().map(super::exif_edit::ifd0_texts).unwrap_or_default();
                let exif = exif.as_deref().map(super::exif_edit::exif_ifd_entries).unwrap_or_default();
                let tags = TiffTags { texts, exif, icc, xmp, density: meta.density, software: meta.history.as_ref().map(|_| software()) };
                bytes = super::tiff::encode(&layers, compression, &tags)?;
            }
            OutputFormat::Webp => {
                encode(WebPEncoder::new_lossless(&mut bytes), &layers, icc, exif)?;
                if let Some(with) = xmp.as_ref().and_then(|x| super::chunks::with_webp_xmp(&bytes, x)) {
                    bytes = with;
                }
            }
        }
        std::fs::write(tmp, &bytes).map_err(image::ImageError::IoError)
    })
    .map_err(|e| PhotoError::Write { path: path.into(), detail: e.to_string() })
}

/// The colour pixels and, where kept, the transparency written with them.
pub(super) struct Layers<'a> {
    pub(super) pixels: Pixels<'a>,
    /// 8-bit transparency (a 16-bit photo brings its own).
    pub(super) alpha: Option<&'a GrayImage>,
    pub(super) size: (u32, u32),
}

/// Interleaved samples of a result, with or without alpha.
pub(super) enum Samples<'a> {
    Rgb8(&'a [u8]),
    Rgba8(Vec<u8>),
    Rgb16(&'a [u16]),
    Rgba16(Vec<u16>),
}

impl Layers<'_> {
    pub(super) fn samples(&self) -> Samples<'_> {
        match (self.pixels, self.alpha) {
            (Pixels::Eight(rgb), None) => Samples::Rgb8(rgb.as_raw()),
            (Pixels::Eight(rgb), Some(alpha)) => {
                Samples::Rgba8(rgb.pixels().zip(alpha.pixels()).flat_map(|(c, a)| [c[0], c[1], c[2], a[0]]).collect())
            }
            (Pixels::Sixteen(rgb, None), _) => Samples::Rgb16(rgb.as_raw()),
            (Pixels::Sixteen(rgb, Some(alpha)), _) => {
                Samples::Rgba16(rgb.pixels().zip(alpha.pixels()).flat_map(|(c, a)| [c[0], c[1], c[2], a[0]]).collect())
            }
        }
    }
}

/// What a TIFF result carries besides its pixels. A TIFF keeps EXIF's first-directory text (the
/// description, artist, copyright, camera, date) among its own tags, and EXIF's own directory
/// (exposure, lens, the date taken) as its Exif directory.
pub(super) struct TiffTags {
    pub(super) texts: Vec<(u16, String)>,
    pub(super) exif: Vec<super::exif_edit::SubEntry>,
    pub(super) icc: Option<Vec<u8>>,
    pub(super) xmp: Option<Vec<u8>>,
    pub(super) density: Option<super::Density>,
    pub(super) software: Option<String>,
}

fn encode(mut encoder: impl ImageEncoder, layers: &Layers, icc: Option<Vec<u8>>, exif: Option<Vec<u8>>) -> Result<(), image::ImageError> {
    // All three encoders accept both; an unsupported one would only cost the metadata.
    if let Some(icc) = icc {
        let _ = encoder.set_icc_profile(icc);
    }
    if let Some(exif) = exif {
        let _ = encoder.set_exif_metadata(exif);
    }
    let (w, h) = layers.size;
    // The image crate's encoders take 16-bit samples as bytes in the machine's order.
    let bytes16 = |s: &[u16]| s.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<u8>>();
    match layers.samples() {
        Samples::Rgb8(s) => encoder.write_image(s, w, h, image::ExtendedColorType::Rgb8),
        Samples::Rgba8(s) => encoder.write_image(&s, w, h, image::ExtendedColorType::Rgba8),
        Samples::Rgb16(s) => encoder.write_image(&bytes16(s), w, h, image::ExtendedColorType::Rgb16),
        Samples::Rgba16(s) => encoder.write_image(&bytes16(&s), w, h, image::ExtendedColorType::Rgba16),
    }
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
        assert!("gif".parse::<OutputFormat>().unwrap_err().contains("png, jpg, webp, tiff or tiff-lzw"));
        assert_eq!("tiff-LZW".parse(), Ok(OutputFormat::Tiff { compression: TiffCompression::Lzw }));
        for f in [
            OutputFormat::Png,
            OutputFormat::Jpeg { quality: 80 },
            OutputFormat::Webp,
            OutputFormat::Tiff { compression: TiffCompression::Deflate },
        ] {
            assert_eq!(f.extension().parse::<OutputFormat>().map(|p| p.extension()), Ok(f.extension()));
        }
    }
}
