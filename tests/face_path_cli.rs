//! GPEN's face path from the command line: `detect` with RetinaFace, `restore` choosing its detector
//! and paste mask (and saying which it used), the `parse` command, and the add-ons installed by
//! `models import` and then picked up by `auto`. Weights are the small goldens; every run gets its
//! own data folder, so nothing installed on the machine changes what these tests see.

mod common;

use common::{golden, golden_weights, os, run_with_data as run};
use serde_json::Value;
use std::path::PathBuf;

fn r50() -> PathBuf {
    golden().join("retinaface/r50.pth")
}

fn astronaut() -> PathBuf {
    common::repo_root().join("../shared/photos/astronaut.png")
}

#[test]
fn detect_with_retinaface_reports_the_true_scores_and_the_authors_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        tmp.path(),
        &[
            os("detect"),
            os("--device"),
            os("cpu"),
            os("--detector"),
            os("retinaface"),
            os("--detector-weights"),
            r50().as_os_str(),
            os("--threshold"),
            os("0.6"),
            os("--json"),
            astronaut().as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("RetinaFace ResNet-50"), "{stderr}");
    let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
    let faces = ours["astronaut.png"]["faces"].as_array().unwrap();
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(golden().join("retinaface/r50-detections.json")).unwrap()).unwrap();
    let theirs = golden["astronaut.png"]["dets"].as_array().unwrap();
    assert_eq!(faces.len(), theirs.len());
    for (f, g) in faces.iter().zip(theirs) {
        let det: Vec<f64> = serde_json::from_value(g["det"].clone()).unwrap();
        let bbox: Vec<f64> = serde_json::from_value(f["box"].clone()).unwrap();
        for (a, b) in bbox.iter().zip(&det[..4]) {
            assert!((a - b).abs() < 0.5, "{bbox:?} vs {det:?}");
        }
        let score = f["score"].as_f64().unwrap();
        assert!(score > 0.6 && score <= 1.0 && (score - det[4]).abs() < 1e-4, "{score} vs {}", det[4]);
    }
}

#[test]
fn restore_names_the_detector_and_mask_it_used_and_asks_for_missing_add_ons() {
    let tmp = tempfile::tempdir().unwrap();
    let restored = tmp.path().join("out");
    let out = run(
        tmp.path(),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            golden_weights().as_os_str(),
            os("--detector"),
            os("retinaface"),
            os("--detector-weights"),
            r50().as_os_str(),
            os("--threshold"),
            os("0.6"),
            astronaut().as_os_str(),
            os("-o"),
            restored.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("faces: RetinaFace (") && stderr.contains("paste mask: feathered rectangle (no face parser installed)"),
        "{stderr}"
    );
    assert!(stderr.contains("faces restored 10, failed 0"), "the ten golden detections at 0.6: {stderr}");
    assert!(restored.join("astronaut.png").is_file());

    // Asked for by name but not installed: an error that says how to get it, and nothing runs.
    let out = run(
        tmp.path(),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            golden_weights().as_os_str(),
            os("--mask"),
            os("parser"),
            astronaut().as_os_str(),
            os("-o"),
            tmp.path().join("out2").as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gpen-studio models download ParseNet-latest") && stderr.contains("--parser-weights"), "{stderr}");
    assert!(!tmp.path().join("out2").exists());
}

#[test]
fn parse_writes_the_face_mask_the_labels_and_the_paste_mask() {
    let tmp = tempfile::tempdir().unwrap();
    let face = golden().join("align/solvay_1927_face00_aligned512.png");
    let out = run(
        tmp.path(),
        &[
            os("parse"),
            os("--device"),
            os("cpu"),
            os("--parser-weights"),
            golden().join("parsenet/weights.pth").as_os_str(),
            os("--parser-size"),
            os("256"),
            face.as_os_str(),
            os("-o"),
            tmp.path().as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stem = "solvay_1927_face00_aligned512";
    let mask = image::open(tmp.path().join(format!("{stem}_mask.png"))).unwrap().to_luma8();
    let theirs = image::open(golden().join("parsenet/mask.png")).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), theirs.dimensions(), "the mask is at the parser's size");
    let same = mask.as_raw().iter().zip(theirs.as_raw()).filter(|(a, b)| a == b).count() as f64 / mask.as_raw().len() as f64;
    assert!(same >= 0.999, "{:.4} % of the mask equal", same * 100.0);
    let labels = image::open(tmp.path().join(format!("{stem}_labels.png"))).unwrap().to_luma8();
    assert!(labels.as_raw().iter().all(|&l| l < 19));
    let paste = image::open(tmp.path().join(format!("{stem}_paste.png"))).unwrap().to_luma8();
    assert_eq!(paste.dimensions(), (512, 512), "the paste mask is at the face's size");
    assert_eq!(paste.get_pixel(0, 0)[0], 0, "the border is outside the paste");
}

#[test]
fn imported_add_ons_are_verified_recorded_and_used_by_auto() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    // A wrong file under an add-on's name is refused and leaves nothing.
    let out = run(data, &[os("models"), os("import"), os("--as"), os("RetinaFace-R50"), golden_weights().as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was installed"), "{}", String::from_utf8_lossy(&out.stderr));
    let models = data.join("gpen-studio/models");
    assert!(!models.join("RetinaFace-R50.pth").exists());

    // The golden detector, recognised by its content.
    let out = run(data, &[os("models"), os("import"), r50().as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(models.join("RetinaFace-R50.pth").is_file());
    let sums: Value = serde_json::from_str(&std::fs::read_to_string(models.join("checksums.json")).unwrap()).unwrap();
    assert_eq!(sums["RetinaFace-R50.pth"]["network"], "RetinaFace ResNet-50");
    let verify = run(data, &[os("models"), os("verify")]);
    let verified = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && verified.contains("RetinaFace ResNet-50, matches its recorded SHA-256"), "{verified}");
    let list = String::from_utf8_lossy(&run(data, &[os("models"), os("list")]).stdout).into_owned();
    assert!(list.contains("face detector (RetinaFace)") && list.contains("ParseNet-latest"), "{list}");

    // `auto` now finds faces with it (the dry run says so, and loads nothing).
    let out = run(
        data,
        &[
            os("restore"),
            os("--dry-run"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            golden_weights().as_os_str(),
            astronaut().as_os_str(),
            os("-o"),
            tmp.path().join("out").as_os_str(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("faces: RetinaFace (") && stdout.contains("RetinaFace-R50.pth"), "{stdout}");
}

/// The parser's input size is not in its weights: the released ParseNet runs at 512, and any other
/// parser (here the golden's small one) needs `--parser-size`; without it `parse` and `restore`
/// stop before any work as bad usage (2), naming the option.
#[test]
fn a_parser_that_is_not_the_released_one_needs_its_size_given() {
    let tmp = tempfile::tempdir().unwrap();
    let parser = golden().join("parsenet/weights.pth");
    let face = golden().join("align/solvay_1927_face00_aligned512.png");
    let parse = run(
        tmp.path(),
        &[
            os("parse"),
            os("--device"),
            os("cpu"),
            os("--parser-weights"),
            parser.as_os_str(),
            face.as_os_str(),
            os("-o"),
            tmp.path().join("p").as_os_str(),
        ],
    );
    let out = tmp.path().join("r");
    let restore = run(
        tmp.path(),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            golden_weights().as_os_str(),
            os("--mask"),
            os("parser"),
            os("--parser-weights"),
            parser.as_os_str(),
            astronaut().as_os_str(),
            os("-o"),
            out.as_os_str(),
        ],
    );
    for (what, result) in [("parse", &parse), ("restore", &restore)] {
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("give the size it was trained at with --parser-size N"), "{what}: {stderr}");
    }
    assert!(!out.join("astronaut.png").exists(), "nothing was restored");
}
