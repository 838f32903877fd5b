//! The whole face path against the authors' `FaceEnhancement.process` (golden/pipeline, use_sr
//! off): the same faces (given through `restore --faces`, as the golden injected them in place of
//! its detector), the golden GPEN-64 and ParseNet-256 weights, and the photo that comes out must
//! equal theirs within the golden README's tolerances. The intermediate results are checked too:
//! aligned crops, restored faces (GPEN's truncation to 8 bits), each face's inverse transform and
//! the final paste mask.

mod common;

use common::{bin, golden, golden_weights, rgb};
use gpen_studio::align::{self, Affine2};
use gpen_studio::detect::Face;
use gpen_studio::mask::{FaceMasker, ParsedMask};
use gpen_studio::pipeline::paste::{self, PasteFace};
use gpen_studio::restore::gpen::Gpen;
use image::RgbImage;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use tch::Device;

const CASES: [&str; 2] = ["solvay", "astronaut"];

fn pipeline() -> PathBuf {
    golden().join("pipeline")
}

fn parser_weights() -> PathBuf {
    golden().join("parsenet/weights.pth")
}

/// The faces the golden injected for the no-SR run, in its order, as our `Face`s.
fn golden_faces(case: &str) -> (Vec<Face>, Vec<Affine2>) {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(pipeline().join(format!("{case}-faces.json"))).unwrap()).unwrap();
    json["nosr"]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let det: Vec<f32> = serde_json::from_value(f["det"].clone()).unwrap();
            let landmarks: [[f32; 2]; 5] = serde_json::from_value(f["landmarks"].clone()).unwrap();
            let tfm_inv: [[f64; 3]; 2] = serde_json::from_value(f["tfm_inv"].clone()).unwrap();
            (Face { bbox: [det[0], det[1], det[2], det[3]], score: det[4], landmarks }, Affine2 { m: tfm_inv })
        })
        .unzip()
}

/// Differences of two 8-bit images of one size: (mean, 99.9th percentile, max, share > 1 level,
/// share != 0).
fn stats(ours: &RgbImage, theirs: &RgbImage) -> (f64, u8, u8, f64, f64) {
    assert_eq!(ours.dimensions(), theirs.dimensions());
    let mut d: Vec<u8> = ours.as_raw().iter().zip(theirs.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
    let n = d.len() as f64;
    let mean = d.iter().map(|&v| v as f64).sum::<f64>() / n;
    let over1 = d.iter().filter(|&&v| v > 1).count() as f64 / n;
    let nonzero = d.iter().filter(|&&v| v > 0).count() as f64 / n;
    d.sort_unstable();
    let p999 = d[((n * 0.999) as usize).min(d.len() - 1)];
    (mean, p999, *d.last().unwrap(), over1, nonzero)
}

#[test]
fn restore_with_given_faces_and_the_parser_equals_the_authors_photo() {
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let (faces, _) = golden_faces(case);
        // The `detect --json` layout, keyed by the photo's file name.
        let input = pipeline().join(format!("{case}-input.png"));
        let faces_file = tmp.path().join("faces.json");
        let entry = serde_json::json!({ format!("{case}-input.png"): { "faces": faces } });
        std::fs::write(&faces_file, entry.to_string()).unwrap();
        let out = tmp.path().join("out");
        let run = Command::new(bin())
            .args(["restore", "--device", "cpu", "--workers", "1", "--save-faces", "--mask", "parser", "--detector", "mtcnn"])
            .arg("--weights")
            .arg(golden_weights())
            .arg("--parser-weights")
            .arg(parser_weights())
            .args(["--parser-size", "256"])
            .arg("--faces")
            .arg(&faces_file)
            .arg(&input)
            .arg("-o")
            .arg(&out)
            // Nothing installed by the user can change the run.
            .env("XDG_DATA_HOME", tmp.path().join("data"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        assert!(stderr.contains("paste mask: face-parsing mask (ParseNet"), "the output names the mask: {stderr}");
        assert!(stderr.contains(&format!("faces restored {}, failed 0", faces.len())), "{stderr}");

        let ours = rgb(&out.join(format!("{case}-input.png")));
        let theirs = rgb(&pipeline().join(format!("{case}-output_nosr.png")));
        let (mean, p999, max, over1, _) = stats(&ours, &theirs);
        println!("{case}: photo vs the authors': mean {mean:.4}, p99.9 {p999}, max {max}, > 1 level {:.3} %", over1 * 100.0);
        assert!(mean <= 0.05 && p999 <= 1 && over1 <= 0.001, "{case}: mean {mean}, p99.9 {p999}, > 1 level {over1}");

        // --save-faces: aligned input | restored face, at the model's size (64).
        for i in 0..faces.len() {
            let pair = rgb(&out.join(format!("{case}-input_face{i:02}.png")));
            let aligned = image::imageops::crop_imm(&pair, 0, 0, 64, 64).to_image();
            let restored = image::imageops::crop_imm(&pair, 64, 0, 64, 64).to_image();
            let (mean, _, max, _, _) = stats(&aligned, &rgb(&pipeline().join(format!("{case}-nosr-face{i:02}-orig.png"))));
            assert!(max <= 1 && mean <= 0.01, "{case} face {i} aligned: max {max}, mean {mean}");
            let (_, _, max, _, differing) = stats(&restored, &rgb(&pipeline().join(format!("{case}-nosr-face{i:02}-enhanced.png"))));
            assert!(max <= 1 && differing <= 0.02, "{case} face {i} restored: max {max}, {:.2} % differ", differing * 100.0);
        }
    }
}

#[test]
fn transforms_and_the_paste_mask_equal_the_authors() {
    let gpen = Gpen::load(&golden_weights(), Device::Cpu, gpen_studio::device::Precision::Fp32).unwrap();
    let masker = ParsedMask::load(&parser_weights(), Some(256), 64, Device::Cpu).unwrap();
    for case in CASES {
        let photo = rgb(&pipeline().join(format!("{case}-input.png")));
        let (faces, golden_inv) = golden_faces(case);
        let landmarks: Vec<_> = faces.iter().map(|f| f.landmarks).collect();
        let aligned = align::align_faces(&photo, &landmarks, 64, Device::Cpu).unwrap();
        for (i, (a, g)) in aligned.iter().zip(&golden_inv).enumerate() {
            for r in 0..2 {
                for c in 0..3 {
                    let tol = if c == 2 { 0.05 } else { 1e-3 };
                    assert!((a.tfm_inv.m[r][c] - g.m[r][c]).abs() <= tol, "{case} face {i}: {:?} vs {:?}", a.tfm_inv.m, g.m);
                }
            }
        }
        let crops: Vec<&RgbImage> = aligned.iter().map(|a| &a.crop).collect();
        let restored = gpen.restore(&crops).unwrap();
        let masks = masker.masks(&restored.iter().collect::<Vec<_>>()).unwrap();
        let paste: Vec<PasteFace> = restored
            .iter()
            .zip(&aligned)
            .zip(&faces)
            .zip(&masks)
            .map(|(((r, a), f), m)| PasteFace {
                restored: r,
                aligned: &a.crop,
                tfm: a.tfm,
                box_side: f.width().min(f.height()),
                mask: m,
                strength: 1.0,
            })
            .collect();
        let ours = paste::composite(photo.width(), photo.height(), &paste).mask;
        let theirs = common::read_npy(&pipeline().join(format!("{case}-nosr-full_mask.npy")));
        let theirs: Vec<f32> = Vec::try_from(theirs.flatten(0, -1)).unwrap();
        assert_eq!(ours.len(), theirs.len());
        let diffs: Vec<f32> = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).collect();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        let max = diffs.iter().copied().fold(0f32, f32::max);
        println!("{case}: paste mask vs the authors': mean {mean:.2e}, max {max:.2e}");
        assert!(mean <= 1e-3 && max <= 0.05, "{case}: full mask mean {mean}, max {max}");
    }
}

#[test]
fn a_faces_file_that_is_not_the_detect_layout_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("faces.json");
    std::fs::write(&bad, r#"[{"box": [1, 2, 3, 4]}]"#).unwrap();
    let run = Command::new(bin())
        .args(["restore", "--device", "cpu", "--weights"])
        .arg(golden_weights())
        .arg("--faces")
        .arg(&bad)
        .arg(pipeline().join("astronaut-input.png"))
        .arg("-o")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("faces file") && stderr.contains("detect --json"), "{stderr}");
    assert!(!tmp.path().join("out").exists(), "nothing is written for a bad faces file");
}
