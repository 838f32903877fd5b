//! HEIC — what a phone saves when someone photographs a print — and AVIF, both HEIF containers,
//! read through libheif (the `libheif-rs` binding). libheif applies the container's own rotation
//! and mirroring, so the EXIF orientation is only reset, never applied again.

use std::path::Path;

use image::{GrayImage, RgbImage};
use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};

use super::error::PhotoError;
use super::read::ReadLimits;

/// A HEIF photo as read: upright 8-bit RGB, its transparency, and its metadata.
pub struct Decoded {
    pub pixels: RgbImage,
    pub alpha: Option<GrayImage>,
    pub icc: Option<Vec<u8>>,
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
}

const FORMAT: &str = "HEIF";

pub fn decode(path: &Path, limits: &ReadLimits) -> Result<Decoded, PhotoError> {
    let corrupt = |e: libheif_rs::HeifError| PhotoError::Corrupt { path: path.into(), format: FORMAT, detail: e.to_string() };
    let bytes = std::fs::read(path).map_err(|e| PhotoError::from_io(path, e))?;
    let context = HeifContext::read_from_bytes(&bytes).map_err(corrupt)?;
    let handle = context.primary_image_handle().map_err(corrupt)?;
    let (width, height) = (handle.width(), handle.height());
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(PhotoError::TooLarge { path: path.into(), width, height, limit: limits.max_pixels });
    }
    if pixels * 4 > limits.max_alloc_bytes {
        return Err(PhotoError::TooMuchMemory { path: path.into(), needed: pixels * 4, limit: limits.max_alloc_bytes });
    }
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha { RgbChroma::Rgba } else { RgbChroma::Rgb };
    let image = LibHeif::new().decode(&handle, ColorSpace::Rgb(chroma), None).map_err(corrupt)?;
    let planes = image.planes();
    let plane = planes.interleaved.ok_or_else(|| PhotoError::Corrupt {
        path: path.into(),
        format: FORMAT,
        detail: "libheif gave no interleaved RGB".into(),
    })?;
    let channels = if alpha { 4 } else { 3 };
    let (w, h) = (plane.width, plane.height);
    let row = |y: u32| &plane.data[y as usize * plane.stride..][..w as usize * channels];
    let rgb = RgbImage::from_fn(w, h, |x, y| {
        let p = &row(y)[x as usize * channels..];
        image::Rgb([p[0], p[1], p[2]])
    });
    let alpha = alpha
        .then(|| GrayImage::from_fn(w, h, |x, y| image::Luma([row(y)[x as usize * 4 + 3]])))
        .filter(|a| a.as_raw().iter().any(|&v| v < 255));

    let mut exif = None;
    let mut xmp = None;
    for block in handle.all_metadata() {
        if block.item_type.0 == *b"Exif" {
            // The block starts with the offset of the TIFF header after these four bytes.
            let skip = block.raw_data.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize + 4);
            exif = skip.and_then(|s| block.raw_data.get(s..)).map(<[u8]>::to_vec);
        } else if block.content_type == "application/rdf+xml" {
            xmp = Some(block.raw_data);
        }
    }
    if let Some(exif) = exif.as_mut() {
        let _ = image::metadata::Orientation::remove_from_exif_chunk(exif);
    }
    let icc = handle.color_profile_raw().map(|p| p.data).filter(|d| !d.is_empty());
    Ok(Decoded { pixels: rgb, alpha, icc, exif, xmp })
}
