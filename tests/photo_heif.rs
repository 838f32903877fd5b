//! HEIC (phone photos of prints) and AVIF read through libheif like any other photo: upright RGB,
//! transparency kept, folders pick them up, and a restore writes them out in the usual formats.
//! Test photos: tests/data/heif (libheif-rs's own, CC BY-SA 4.0).
#![cfg(feature = "heif")]

mod common;
use std::path::{Path, PathBuf};

use gpen_studio::photo::{ReadLimits, SourceFormat, read_photo};
use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/heif").join(name)
}

/// The file decoded by libheif directly as RGBA (another chroma than the reader asks for), as
/// (width, height, RGBA samples).
fn rgba_by_libheif(path: &Path) -> (u32, u32, Vec<u8>) {
    let context = HeifContext::read_from_file(path.to_str().unwrap()).unwrap();
    let handle = context.primary_image_handle().unwrap();
    let image = LibHeif::new().decode(&handle, ColorSpace::Rgb(RgbChroma::Rgba), None).unwrap();
    let plane = image.planes().interleaved.unwrap();
    let rows = (0..plane.height as usize).flat_map(|y| plane.data[y * plane.stride..][..plane.width as usize * 4].to_vec());
    (plane.width, plane.height, rows.collect())
}

#[test]
fn heic_and_avif_photos_read_as_libheif_decodes_them() {
    for name in ["test.heic", "test_nclx.avif", "alpha.heif"] {
        let photo = read_photo(&data(name), &ReadLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(photo.source_format, SourceFormat::Heif, "{name}");
        let (w, h, rgba) = rgba_by_libheif(&data(name));
        assert_eq!(photo.pixels.dimensions(), (w, h), "{name}");
        let same = photo.pixels.pixels().zip(rgba.chunks(4)).all(|(p, q)| p.0 == [q[0], q[1], q[2]]);
        assert!(same, "{name}: every pixel is libheif's");
        let transparent = rgba.chunks(4).any(|q| q[3] < 255);
        assert_eq!(photo.alpha.is_some(), transparent, "{name}: transparency kept exactly when there is some");
    }
}

#[test]
fn a_folder_of_phone_photos_is_restored_with_their_transparency() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("phone");
    std::fs::create_dir_all(&input).unwrap();
    for name in ["test.heic", "alpha.heif"] {
        std::fs::copy(data(name), input.join(name)).unwrap();
    }
    let out = tmp.path().join("out");
    common::restore_with_golden(&input, &out, &[]);
    for name in ["test", "alpha"] {
        let result = image::open(out.join(format!("{name}.png"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (w, h, rgba) = rgba_by_libheif(&data(if name == "test" { "test.heic" } else { "alpha.heif" }));
        assert_eq!((result.width(), result.height()), (w, h), "{name}");
        if name == "alpha" {
            let alpha: Vec<u8> = result.to_rgba8().pixels().map(|p| p[3]).collect();
            assert!(alpha.iter().zip(rgba.chunks(4)).all(|(a, q)| *a == q[3]), "the alpha plane comes back");
        }
    }
}
