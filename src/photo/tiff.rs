//! TIFF results for archives: deflate or LZW (lossless), with the colour profile, the XMP packet,
//! the resolution, EXIF (its descriptive text among the file's own tags, its camera settings in the
//! file's Exif directory) and the program that wrote it, written by the `tiff` crate (the one the
//! image crate reads TIFF with).

use std::io::Cursor;

use tiff::Directory;
use tiff::encoder::colortype::{ColorType, RGB8, RGB16, RGBA8, RGBA16};
use tiff::encoder::{Compression, DeflateLevel, Rational, TiffEncoder, TiffValue};
use tiff::tags::{ExtraSamples, ResolutionUnit, Tag, Type};

use super::write::{Layers, Samples, TiffCompression, TiffTags};

/// The XMP packet's tag (Adobe's XMP specification, part 3).
const XMP_TAG: u16 = 700;

/// The whole TIFF file of `layers`.
pub(super) fn encode(layers: &Layers, compression: TiffCompression, tags: &TiffTags) -> Result<Vec<u8>, image::ImageError> {
    let compression = match compression {
        TiffCompression::Deflate => Compression::Deflate(DeflateLevel::Balanced),
        TiffCompression::Lzw => Compression::Lzw,
    };
    let (w, h) = layers.size;
    let written = match layers.samples() {
        Samples::Rgb8(s) => image_file::<RGB8>(s, w, h, compression, false, tags),
        Samples::Rgba8(s) => image_file::<RGBA8>(&s, w, h, compression, true, tags),
        Samples::Rgb16(s) => image_file::<RGB16>(s, w, h, compression, false, tags),
        Samples::Rgba16(s) => image_file::<RGBA16>(&s, w, h, compression, true, tags),
    };
    written.map_err(|e| image::ImageError::IoError(std::io::Error::other(e.to_string())))
}

fn image_file<C: ColorType>(
    samples: &[C::Inner],
    w: u32,
    h: u32,
    compression: Compression,
    alpha: bool,
    tags: &TiffTags,
) -> tiff::TiffResult<Vec<u8>>
where
    [C::Inner]: TiffValue,
{
    let mut file = Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut file)?.with_compression(compression);
    // EXIF's own directory first (the image's directory points at it).
    let exif_ifd = if tags.exif.is_empty() {
        None
    } else {
        let mut dir = encoder.extra_directory()?;
        let mut entries = Directory::empty();
        for e in &tags.exif {
            let Some(kind) = Type::from_u16(e.kind) else { continue };
            let entry = dir.write_entry_bytes(kind, &e.data)?;
            entries.extend([(Tag::from_u16_exhaustive(e.tag), entry)]);
        }
        dir.extend_from(&entries);
        Some(dir.finish_with_offsets()?.offset)
    };
    let mut image = encoder.new_image::<C>(w, h)?;
    if let Some(offset) = exif_ifd {
        image.encoder().write_tag(Tag::ExifDirectory, offset)?;
    }
    if alpha {
        // The fourth sample of RGBA is already in the colour type; the tag says what it is
        // (`extra_samples` would add a fifth).
        image.encoder().write_tag(Tag::ExtraSamples, &[ExtraSamples::UnassociatedAlpha.to_u16()][..])?;
    }
    if let Some(d) = tags.density {
        // Hundredths of a dot per inch: a density scaled by --upscale keeps its fraction.
        let dpi = |v: f64| Rational { n: (v * 100.0).round().clamp(1.0, u32::MAX as f64) as u32, d: 100 };
        image.resolution_unit(ResolutionUnit::Inch);
        image.encoder().write_tag(Tag::XResolution, dpi(d.x))?;
        image.encoder().write_tag(Tag::YResolution, dpi(d.y))?;
    }
    for (tag, text) in &tags.texts {
        image.encoder().write_tag(Tag::from_u16_exhaustive(*tag), text.as_str())?;
    }
    if let Some(software) = &tags.software {
        image.encoder().write_tag(Tag::Software, software.as_str())?;
    }
    if let Some(icc) = &tags.icc {
        image.encoder().write_tag(Tag::IccProfile, &icc[..])?;
    }
    if let Some(xmp) = &tags.xmp {
        image.encoder().write_tag(Tag::Unknown(XMP_TAG), &xmp[..])?;
    }
    image.write_data(samples)?;
    Ok(file.into_inner())
}
