//! Builders for the generated photo corpus, shared by the library-level tests (photo_io.rs) and
//! the end-to-end reliability suite (reliability.rs): encoded images, EXIF blocks, PNG chunks.

use std::io::Cursor;

use image::{DynamicImage, ImageEncoder, ImageFormat, RgbImage};

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// A TIFF-structured EXIF block (what follows `Exif\0\0` in a JPEG APP1 segment) with IFD0 holding
/// Orientation (0x0112, SHORT) and ImageDescription (0x010E, ASCII) so other tags can be checked
/// to survive the orientation reset.
pub fn exif_block(orientation: u16, big_endian: bool) -> Vec<u8> {
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let description = b"gpen-studio test\0";
    let mut e = Vec::new();
    e.extend_from_slice(if big_endian { b"MM\0\x2a" } else { b"II\x2a\0" });
    e.extend_from_slice(&u32b(8)); // IFD0 right after the header
    e.extend_from_slice(&u16b(2)); // two entries, sorted by tag
    let text_offset = 8 + 2 + 2 * 12 + 4;
    e.extend_from_slice(&u16b(0x010E));
    e.extend_from_slice(&u16b(2)); // ASCII
    e.extend_from_slice(&u32b(description.len() as u32));
    e.extend_from_slice(&u32b(text_offset));
    e.extend_from_slice(&u16b(0x0112));
    e.extend_from_slice(&u16b(3)); // SHORT
    e.extend_from_slice(&u32b(1));
    e.extend_from_slice(&u16b(orientation));
    e.extend_from_slice(&[0, 0]); // value field padding
    e.extend_from_slice(&u32b(0)); // no next IFD
    e.extend_from_slice(description);
    e
}

/// Inserts an APP1 `Exif\0\0` segment right after SOI, as cameras write it.
pub fn with_exif_app1(jpeg: &[u8], exif: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let len = (2 + 6 + exif.len()) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The stored (sensor) image whose EXIF `orientation` makes a viewer show `upright`. Written out
/// per the EXIF spec's row/column table, independently of the code under test.
pub fn stored_for(orientation: u16, upright: &RgbImage) -> RgbImage {
    use image::imageops::{flip_horizontal, flip_vertical, rotate90, rotate180, rotate270};
    match orientation {
        1 => upright.clone(),
        2 => flip_horizontal(upright),             // 0th row top, 0th column right
        3 => rotate180(upright),                   // bottom, right
        4 => flip_vertical(upright),               // bottom, left
        5 => flip_horizontal(&rotate90(upright)),  // 0th row = left side, 0th column = top (transpose)
        6 => rotate270(upright),                   // 0th row = right side: shown after a 90° clockwise turn
        7 => flip_horizontal(&rotate270(upright)), // 0th row = right side, 0th column = bottom (transverse)
        8 => rotate90(upright),                    // 0th row = left side: shown after a 90° counter-clockwise turn
        _ => unreachable!(),
    }
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&crc32(&c[4..]).to_be_bytes());
    c
}

/// A well-formed PNG header declaring `w`×`h` RGB, followed by a tiny IDAT and IEND: a few dozen
/// bytes that would need `w*h*3` bytes to decode.
pub fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

/// Byte offset of the first JPEG marker `marker` (e.g. 0xC0 for SOF0).
pub fn find_marker(jpeg: &[u8], marker: u8) -> usize {
    jpeg.windows(2).position(|w| w == [0xFF, marker]).expect("marker present")
}
