//! A photo's resolution (dots per inch) as its file records it — JFIF's density in a JPEG, `pHYs`
//! in a PNG, the resolution tags of a TIFF — read so that a result prints at the size the original
//! did (with `--upscale S` the density is S times the original's). Only these small header fields
//! are read here; the pixels are the decoders' business.

use std::io::{Read, Seek};
use std::path::Path;

use image::ImageFormat;

const INCH_PER_METRE: f64 = 1.0 / 0.0254;
const CM_PER_INCH: f64 = 2.54;

/// Dots per inch, across and down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Density {
    pub x: f64,
    pub y: f64,
}

impl Density {
    /// The density of the same print at `factor` times the pixels.
    pub fn scaled(self, factor: f64) -> Density {
        Density { x: self.x * factor, y: self.y * factor }
    }

    fn valid(self) -> Option<Density> {
        (self.x.is_finite() && self.y.is_finite() && self.x > 0.0 && self.y > 0.0).then_some(self)
    }

    /// JFIF's fields: dots per inch, rounded (JFIF holds whole numbers up to 65535).
    pub fn jfif(self) -> (u16, u16) {
        let whole = |d: f64| d.round().clamp(1.0, u16::MAX as f64) as u16;
        (whole(self.x), whole(self.y))
    }

    /// PNG's `pHYs` fields: dots per metre, rounded.
    pub fn per_metre(self) -> (u32, u32) {
        let whole = |d: f64| (d * INCH_PER_METRE).round().clamp(1.0, u32::MAX as f64) as u32;
        (whole(self.x), whole(self.y))
    }
}

/// The density the file at `path` records, if any (a file that records only an aspect ratio, or
/// damaged fields, has none).
pub fn read_density(path: &Path, format: ImageFormat) -> Option<Density> {
    let mut file = std::fs::File::open(path).ok()?;
    match format {
        ImageFormat::Jpeg => jfif_density(&head(&mut file, 1 << 16)?),
        ImageFormat::Png => png_density(&head(&mut file, 1 << 20)?),
        ImageFormat::Tiff => tiff_density(file),
        _ => None,
    }
}

fn head(file: &mut std::fs::File, limit: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// From the JFIF APP0 segment: units (0 aspect only, 1 per inch, 2 per cm), X and Y density.
pub fn jfif_density(bytes: &[u8]) -> Option<Density> {
    let mut at = 2;
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    // The markers before the image data; JFIF's APP0 comes first when there is one.
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        let body = bytes.get(at + 4..at + 2 + len)?;
        if marker == 0xE0 && body.starts_with(b"JFIF\0") && body.len() >= 12 {
            let (x, y) = (u16::from_be_bytes([body[8], body[9]]) as f64, u16::from_be_bytes([body[10], body[11]]) as f64);
            return match body[7] {
                1 => Density { x, y }.valid(),
                2 => Density { x: x * CM_PER_INCH, y: y * CM_PER_INCH }.valid(),
                _ => None,
            };
        }
        if marker == 0xDA {
            return None;
        }
        at += 2 + len;
    }
    None
}

/// From the `pHYs` chunk: pixels per unit across and down, unit 1 = metre (0: aspect only).
pub fn png_density(bytes: &[u8]) -> Option<Density> {
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().ok()?) as usize;
        let kind = &bytes[at + 4..at + 8];
        if kind == b"IDAT" {
            return None;
        }
        if kind == b"pHYs" {
            let data = bytes.get(at + 8..at + 8 + len.min(9))?;
            let (x, y) = (u32::from_be_bytes(data[0..4].try_into().ok()?), u32::from_be_bytes(data[4..8].try_into().ok()?));
            return (data[8] == 1).then(|| Density { x: x as f64 / INCH_PER_METRE, y: y as f64 / INCH_PER_METRE }).and_then(Density::valid);
        }
        at += 12 + len;
    }
    None
}

/// From XResolution, YResolution and ResolutionUnit (2 inch, the default; 3 centimetre; 1 none).
fn tiff_density(file: impl Read + Seek) -> Option<Density> {
    use tiff::tags::Tag;
    let mut decoder = tiff::decoder::Decoder::new(file).ok()?;
    let mut rational = |tag| match decoder.find_tag(tag).ok()?? {
        tiff::decoder::ifd::Value::Rational(n, d) if d > 0 => Some(n as f64 / d as f64),
        other => other.into_f64().ok(),
    };
    let (x, y) = (rational(Tag::XResolution)?, rational(Tag::YResolution)?);
    let unit = decoder.find_tag_unsigned::<u16>(Tag::ResolutionUnit).ok().flatten().unwrap_or(2);
    match unit {
        2 => Density { x, y }.valid(),
        3 => Density { x: x * CM_PER_INCH, y: y * CM_PER_INCH }.valid(),
        _ => None,
    }
}

/// `png` (a whole PNG file) with a `pHYs` chunk for `density` in place of any it had, before the
/// image data (where the format wants it).
pub fn with_png_density(png: Vec<u8>, density: Density) -> Vec<u8> {
    let (x, y) = density.per_metre();
    let mut data = Vec::with_capacity(9);
    data.extend_from_slice(&x.to_be_bytes());
    data.extend_from_slice(&y.to_be_bytes());
    data.push(1);
    super::chunks::with_png_chunk(png, *b"pHYs", &data)
}
