//! MTCNN face detection matches facenet-pytorch 2.6.0 on the test photos (golden/mtcnn), and the
//! `detect` command reports every image it can read.

mod common;

use gpen_studio::detect::{Face, FaceDetector, Mtcnn, mtcnn};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn photos() -> PathBuf {
    let dir = common::repo_root().join("../shared/photos");
    assert!(dir.is_dir(), "test photos missing at {}", dir.display());
    dir
}

fn golden() -> Value {
    let path = common::golden().join("mtcnn/detections.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn golden_faces(image: &str) -> Vec<Face> {
    serde_json::from_value(golden()[image]["faces"].clone()).unwrap()
}

/// Largest deviation of `f` from `g` over box and landmark coordinates, and of the score.
fn deviation(f: &Face, g: &Face) -> (f32, f32) {
    let mut coords = f.bbox.iter().zip(&g.bbox).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    for (p, q) in f.landmarks.iter().zip(&g.landmarks) {
        coords = coords.max((p[0] - q[0]).abs()).max((p[1] - q[1]).abs());
    }
    (coords, (f.score - g.score).abs())
}

fn check_against_golden(image: &str) {
    let detector = Mtcnn::load(&mtcnn::default_models_dir(), tch::Device::Cpu).unwrap();
    let img = image::open(photos().join(image)).unwrap().to_rgb8();
    let ours = detector.detect(&img).unwrap();
    let want = golden_faces(image);
    assert_eq!(ours.len(), want.len(), "{image}: face count");
    let (mut worst_px, mut worst_score) = (0f32, 0f32);
    let mut used = vec![false; ours.len()];
    for (gi, g) in want.iter().enumerate() {
        // Each golden face takes the closest unused detection.
        let (k, (px, score)) = ours
            .iter()
            .enumerate()
            .filter(|(k, _)| !used[*k])
            .map(|(k, f)| (k, deviation(f, g)))
            .min_by(|a, b| a.1.0.total_cmp(&b.1.0))
            .unwrap_or_else(|| panic!("{image}: no detection left for golden face {gi}"));
        assert!(px <= 2.0 && score <= 0.01, "{image}: golden face {gi} {g:?}\n best match {:?} is off by {px} px, score {score}", ours[k]);
        used[k] = true;
        worst_px = worst_px.max(px);
        worst_score = worst_score.max(score);
    }
    eprintln!("{image}: {} faces, max coordinate deviation {worst_px:.4} px, max score deviation {worst_score:.6}", ours.len());
}

#[test]
fn solvay_faces_match_facenet_pytorch() {
    check_against_golden("solvay_1927.png");
}

#[test]
fn astronaut_face_matches_facenet_pytorch() {
    check_against_golden("astronaut.png");
}

#[test]
fn faces_cut_by_the_border_are_detected_without_errors() {
    let detector = Mtcnn::load(&mtcnn::default_models_dir(), tch::Device::Cpu).unwrap();
    let img = image::open(photos().join("solvay_1927.png")).unwrap().to_rgb8();
    // Crop edges through faces 0, 3 and 16 of the golden list, so their boxes reach outside.
    let cut = image::imageops::crop_imm(&img, 720, 165, 130, 70).to_image();
    let faces = detector.detect(&cut).unwrap();
    assert!(!faces.is_empty());
    for f in &faces {
        assert!(f.bbox.iter().chain(f.landmarks.iter().flatten()).all(|v| v.is_finite()) && f.score > 0.7, "{f:?}");
    }
}

#[test]
fn detect_json_reports_every_photo() {
    let out = Command::new(common::bin())
        .args(["detect", "--json", "--device", "cpu"])
        .arg(photos().join("solvay_1927.png"))
        .arg(photos().join("astronaut.png"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let golden = golden();
    for name in ["solvay_1927.png", "astronaut.png"] {
        let (ours, want) = (&report[name], &golden[name]);
        assert_eq!(ours["width"], want["width"], "{name}");
        assert_eq!(ours["height"], want["height"], "{name}");
        assert_eq!(ours["faces"].as_array().unwrap().len(), want["faces"].as_array().unwrap().len(), "{name}");
        let face = &ours["faces"][0];
        assert_eq!(face["box"].as_array().unwrap().len(), 4);
        assert!(face["score"].is_number());
        assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
    }
}

#[test]
fn an_unreadable_image_fails_but_the_others_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.png");
    std::fs::write(&bad, b"this is not an image").unwrap();
    let out = Command::new(common::bin())
        .args(["detect", "--json", "--device", "cpu"])
        .arg(&bad)
        .arg(photos().join("astronaut.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.png"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["astronaut.png"]["faces"].as_array().unwrap().len(), 1);
    assert!(report.get("notes.png").is_none());

    // The readable form names the file and lists its face.
    let out = Command::new(common::bin()).args(["detect", "--device", "cpu"]).arg(photos().join("astronaut.png")).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("astronaut.png: 512x512, 1 face") && text.contains("face 0: box"), "{text}");
}
