//! `gpen-studio restore --aligned`: aligned crops in batches through the same engine as whole
//! photos (its plan line, OOM policy and resume), a bad input reported while the rest completes,
//! non-zero exit status, inputs untouched, reruns resume.

mod common;
use common::*;
use gpen_studio::device::Precision;
use gpen_studio::restore::gpen::{Gpen, tensor_to_faces};
use image::RgbImage;
use std::path::Path;
use std::process::Command;
use tch::Device;

/// Three 64x64 crops from the golden input tensor, and one 80x80 crop that must be resized.
fn write_inputs(dir: &Path) -> Vec<RgbImage> {
    let x = read_npy(&golden().join("gpen-64/input.npy"));
    let crops = tensor_to_faces(&x).unwrap();
    for (i, c) in crops.iter().enumerate() {
        c.save(dir.join(format!("face{i}.png"))).unwrap();
    }
    image::imageops::resize(&crops[0], 80, 80, image::imageops::FilterType::Triangle).save(dir.join("large.jpg")).unwrap();
    std::fs::write(dir.join("broken.png"), b"this is not a png").unwrap();
    crops
}

fn restore(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["restore", "--aligned", "--device", "cpu", "--batch", "3", "--weights"])
        .arg(golden_weights())
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn restores_a_folder_reports_the_bad_file_and_resumes() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let crops = write_inputs(input.path());
    let before = snapshot(input.path());

    let run = restore(input.path(), out.path(), &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a failed input makes the exit status non-zero");
    assert!(stderr.contains("broken.png: not an image"), "{stderr}");
    assert!(stderr.contains("5 crops; GPEN 64"), "{stderr}");
    assert!(stderr.contains("batch 3: batch fixed at 3 by the user (the memory plan said"), "the engine's plan line: {stderr}");
    assert!(stderr.contains("photos restored 4, without faces 0, already done 0, failed 1; faces restored 4, failed 0"), "{stderr}");
    assert_eq!(snapshot(input.path()), before, "inputs are never modified");

    // Every good crop was restored, and equals what the library gives for that face alone.
    let outputs: Vec<String> = snapshot(out.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(outputs, ["face0.png", "face1.png", "face2.png", "large.png"], "no partial files");
    let gpen = Gpen::load(&golden_weights(), Device::Cpu, Precision::Fp32).unwrap();
    for (i, crop) in crops.iter().enumerate() {
        let want = &gpen.restore(&[crop]).unwrap()[0];
        let got = image::open(out.path().join(format!("face{i}.png"))).unwrap().to_rgb8();
        let worst = got.as_raw().iter().zip(want.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        // Batched and single runs differ by float rounding only, which may move a truncated level by one.
        assert!(worst <= 1, "face{i}: off by {worst} levels");
    }
    assert_eq!(image::open(out.path().join("large.png")).unwrap().to_rgb8().dimensions(), (64, 64));

    // A rerun keeps finished results and only retries what failed.
    let first = snapshot(out.path());
    let again = restore(input.path(), out.path(), &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("photos restored 0, without faces 0, already done 4, failed 1"), "{stderr}");
    assert_eq!(snapshot(out.path()), first);
}

#[test]
fn an_output_folder_equal_to_the_input_folder_never_overwrites_inputs() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    std::fs::remove_file(dir.path().join("broken.png")).unwrap();
    let before = snapshot(dir.path());
    let run = restore(dir.path(), dir.path(), &["--overwrite"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("the result would replace the input"), "{stderr}");
    for (name, bytes) in before {
        assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), bytes, "{name} unchanged");
    }
}

#[test]
fn missing_weights_explain_where_to_get_them() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(bin())
        .args(["restore", "--aligned", "--device", "cpu", "--weights", "/nonexistent/GPEN-BFR-512.pth", "x.png", "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "a missing weights file is bad usage: {stderr}");
    assert!(stderr.contains("not found") && stderr.contains("GPEN-BFR-512.pth"), "{stderr}");
}
