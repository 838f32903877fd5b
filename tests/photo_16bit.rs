//! A 16-bit scan stays 16-bit: the result (PNG or TIFF) is composited from the scan's own samples,
//! so everything outside the restored faces is the input's, bit for bit, and the faces are GPEN's
//! 8-bit faces scaled up, within one 8-bit level of what the same photo in 8 bits gives.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::bin;
use image::{ImageBuffer, Rgb};

type Rgb16 = ImageBuffer<Rgb<u16>, Vec<u16>>;

/// `restore` with the golden generator, MTCNN and the rectangle; the result's path.
fn restore(input: &Path, out: &Path, format: &str) -> PathBuf {
    common::restore_with_golden(input, out, &["--format", format]);
    let ext = if format == "png" { "png" } else { "tif" };
    out.join(input.with_extension(ext).file_name().unwrap())
}

/// The faces' boxes as `detect --json` reports them.
fn face_boxes(photo: &Path) -> Vec<[f64; 4]> {
    let out = Command::new(bin()).args(["detect", "--device", "cpu", "--detector", "mtcnn", "--json"]).arg(photo).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let faces = json.as_object().unwrap().values().next().unwrap()["faces"].as_array().unwrap().clone();
    faces.iter().map(|f| std::array::from_fn(|i| f["box"][i].as_f64().unwrap())).collect()
}

#[test]
fn a_16_bit_scan_keeps_every_untouched_sample_and_its_faces_are_the_8_bit_faces_scaled() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = common::rgb(&common::repo_root().join("../shared/photos/astronaut.png"));
    // The astronaut in 16 bits, with low bits an 8-bit file cannot hold.
    let deep = Rgb16::from_fn(photo.width(), photo.height(), |x, y| {
        let p = photo.get_pixel(x, y);
        Rgb(std::array::from_fn(|c| (p[c] as u16 * 257).saturating_add(((x * 7 + y * 13 + c as u32 * 5) % 97) as u16)))
    });
    let input = tmp.path().join("in16/scan.png");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    deep.save(&input).unwrap();
    // The same photo as an 8-bit file, as it is read in 8 bits.
    let eight = tmp.path().join("in8/scan.png");
    std::fs::create_dir_all(eight.parent().unwrap()).unwrap();
    let eight_pixels = image::open(&input).unwrap().to_rgb8();
    eight_pixels.save(&eight).unwrap();
    let boxes = face_boxes(&eight);
    assert!(!boxes.is_empty());
    // Generously where a face's aligned crop can reach: 1.5 box sides around its centre.
    let near_a_face = |x: u32, y: u32| {
        boxes.iter().any(|b| {
            let (cx, cy, side) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, (b[2] - b[0]).max(b[3] - b[1]));
            (x as f64 - cx).abs() <= 1.5 * side && (y as f64 - cy).abs() <= 1.5 * side
        })
    };
    let out8 = image::open(restore(&eight, &tmp.path().join("out8"), "png")).unwrap().to_rgb8();
    for format in ["png", "tiff"] {
        let result = image::open(restore(&input, &tmp.path().join(format), format)).unwrap();
        assert_eq!(result.color(), image::ColorType::Rgb16, "{format}: the result is 16-bit");
        let result = result.to_rgb16();
        let (mut far, mut changed) = (0usize, 0usize);
        for (x, y, p) in result.enumerate_pixels() {
            let original = deep.get_pixel(x, y);
            if !near_a_face(x, y) {
                far += 1;
                assert_eq!(p, original, "{format}: ({x}, {y}) is far from every face and must be the input's");
            } else {
                let scaled = out8.get_pixel(x, y).0.map(|v| v as i32 * 257);
                let off = (0..3).map(|c| (p[c] as i32 - scaled[c]).abs()).max().unwrap();
                assert!(off <= 257, "{format}: ({x}, {y}) is {off} from the 8-bit result scaled");
                changed += usize::from(p != original);
            }
        }
        assert!(far > 100_000 && changed > 1000, "{format}: {far} samples checked far from faces, {changed} changed near them");
    }
}
