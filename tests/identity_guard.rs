//! The identity guard end to end (`restore` with the golden generator and the golden identity
//! network): a floor that only the original meets softens every face to strength 0, a floor of
//! -1 changes nothing, `flag` reports without altering, and every number is in the report. Also the
//! `identity` command.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn arcface() -> PathBuf {
    golden().join("arcface/weights.pth")
}

fn photo() -> PathBuf {
    repo_root().join("../shared/photos/astronaut.png")
}

/// Restores the astronaut into `out` with `extra`, a report beside it; returns the result's
/// pixels, the report and stderr.
fn restore(out: &Path, extra: &[&str]) -> (image::RgbImage, serde_json::Value, String) {
    let report = out.join("report.json");
    let run = std::process::Command::new(bin())
        .args(["restore", "--device", "cpu", "--detector", "mtcnn", "--mask", "rectangle", "-v", "--weights"])
        .arg(golden_weights())
        .arg(photo())
        .arg("-o")
        .arg(out)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .env("XDG_DATA_HOME", out.join(".no-data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (rgb(&out.join("astronaut.png")), json, stderr)
}

fn faces(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["photos"][0]["faces"].as_array().unwrap().clone()
}

#[test]
fn a_floor_only_the_original_meets_softens_every_face_to_strength_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let id = arcface();
    let (guarded, report, stderr) =
        restore(&tmp.path().join("guarded"), &["--identity-weights", id.to_str().unwrap(), "--identity-floor", "1"]);
    let (original, _, _) = restore(&tmp.path().join("zero"), &["--strength", "0", "--identity", "off"]);
    assert!(guarded == original, "the guarded photo is the strength-0 photo");
    let faces = faces(&report);
    assert!(!faces.is_empty());
    for f in &faces {
        let i = &f["identity"];
        assert_eq!(i["softened"], true, "{f}");
        assert_eq!(i["below_floor"], true, "{f}");
        assert_eq!(i["strength"].as_f64(), Some(0.0), "{f}");
        assert_eq!(i["asked_strength"].as_f64(), Some(1.0), "{f}");
        assert!(i["similarity"].as_f64().unwrap() < 1.0, "{f}");
    }
    assert_eq!(report["totals"]["faces_softened"].as_u64(), Some(faces.len() as u64));
    assert!(stderr.contains("softened from strength 1.00 to 0.00"), "{stderr}");
    assert!(stderr.contains("softened (strength lowered by 1.00 on average)"), "{stderr}");
}

#[test]
fn a_floor_of_minus_one_changes_nothing_and_flag_only_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let id = arcface();
    let id = id.to_str().unwrap();
    let (plain, report, _) = restore(&tmp.path().join("plain"), &["--identity", "off"]);
    assert!(faces(&report).iter().all(|f| f.get("identity").is_none()), "not measured: no numbers");
    let (low, report, _) = restore(&tmp.path().join("low"), &["--identity-weights", id, "--identity-floor", "-1"]);
    assert!(low == plain);
    for f in faces(&report) {
        let i = &f["identity"];
        assert_eq!((i["below_floor"].as_bool(), i["softened"].as_bool()), (Some(false), Some(false)), "{f}");
        assert_eq!(i["strength"].as_f64(), Some(1.0));
        let s = i["similarity"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&s) && i["final_similarity"].as_f64() == Some(s), "{f}");
    }
    let (flagged, report, stderr) =
        restore(&tmp.path().join("flag"), &["--identity-weights", id, "--identity-floor", "1", "--identity-guard", "flag"]);
    assert!(flagged == plain, "flag never alters a face");
    for f in faces(&report) {
        assert_eq!((f["identity"]["below_floor"].as_bool(), f["identity"]["softened"].as_bool()), (Some(true), Some(false)), "{f}");
    }
    assert!(report["totals"]["faces_below_floor"].as_u64().unwrap() > 0 && report["totals"]["faces_softened"] == 0);
    assert!(stderr.contains("kept (--identity-guard flag)") && stderr.contains("below the identity floor"), "{stderr}");
}

#[test]
fn a_floor_without_the_identity_network_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_with_data(
        &tmp.path().join("data"),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            os(&golden_weights()),
            os(&photo()),
            os("-o"),
            os(tmp.path()),
            os("--identity-floor"),
            os("0.6"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // As for every add-on asked for and missing (the parser's, the detector's): status 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("models download model_ir_se50") && stderr.contains("--identity-weights"), "{stderr}");
    assert!(!tmp.path().join("astronaut.png").exists());
    let out = run_with_data(
        &tmp.path().join("data"),
        &[os("restore"), os(&photo()), os("-o"), os(tmp.path()), os("--identity-floor"), os("1.5")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("between -1 and 1"));
}

#[test]
fn the_identity_command_prints_every_pair_and_with_json_the_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = golden().join("align");
    let a = dir.join("solvay_1927_face00_aligned512.png");
    let b = dir.join("solvay_1927_face01_aligned512.png");
    let small = tmp.path().join("small.png");
    gpen_studio::imgproc::resize_linear_rgb(&rgb(&a), 300, 300).save(&small).unwrap();
    let data = tmp.path().join("data");
    let out = run_with_data(&data, &[os("identity"), os("--weights"), os(&arcface()), os(&a), os(&b), os(&small)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stderr.contains("resized to 256x256 first"), "{stderr}");
    let first: f32 = stdout.lines().next().unwrap().split('\t').next().unwrap().parse().unwrap();
    let out = run_with_data(&data, &[os("identity"), os("--json"), os("--weights"), os(&arcface()), os(&a), os(&b), os(&small)]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let faces = json["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 3);
    assert_eq!(faces[0]["embedding"].as_array().unwrap().len(), 128);
    assert_eq!(faces[2]["resized_to"], 256);
    assert!(faces[0]["resized_to"].is_null());
    let sims = &json["similarities"];
    assert!((sims[0][1].as_f64().unwrap() as f32 - first).abs() < 1e-4);
    assert!((sims[0][0].as_f64().unwrap() - 1.0).abs() < 1e-5);
    // Without weights: how to get them.
    let out = run_with_data(&data, &[os("identity"), os(&a), os(&b)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("models download model_ir_se50"));
}

#[test]
fn a_faces_file_gives_a_face_its_own_strength() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let detected =
        run_with_data(&data, &[os("detect"), os("--device"), os("cpu"), os("--detector"), os("mtcnn"), os("--json"), os(&photo())]);
    assert!(detected.status.success(), "{}", String::from_utf8_lossy(&detected.stderr));
    let mut faces: serde_json::Value = serde_json::from_slice(&detected.stdout).unwrap();
    let entry = faces.as_object_mut().unwrap().values_mut().next().unwrap();
    for f in entry["faces"].as_array_mut().unwrap() {
        f["strength"] = serde_json::json!(0.0);
    }
    let file = tmp.path().join("faces.json");
    std::fs::write(&file, serde_json::to_vec(&faces).unwrap()).unwrap();
    let (own, _, _) = restore(&tmp.path().join("own"), &["--identity", "off", "--faces", file.to_str().unwrap()]);
    let (zero, _, _) = restore(&tmp.path().join("zero"), &["--identity", "off", "--strength", "0"]);
    let (full, _, _) = restore(&tmp.path().join("full"), &["--identity", "off"]);
    assert!(own == zero && own != full, "each face at its own strength 0, whatever the run's");
    // A strength outside 0-1 is refused, naming the face.
    entry_strength(&file, 1.5);
    let out = run_with_data(&data, &[os("restore"), os(&photo()), os("-o"), os(&tmp.path().join("bad")), os("--faces"), os(&file)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("face 0 has strength 1.5"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Sets every face's strength in a faces file.
fn entry_strength(file: &Path, strength: f64) {
    let mut faces: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    for entry in faces.as_object_mut().unwrap().values_mut() {
        for f in entry["faces"].as_array_mut().unwrap() {
            f["strength"] = serde_json::json!(strength);
        }
    }
    std::fs::write(file, serde_json::to_vec(&faces).unwrap()).unwrap();
}

#[test]
fn compare_with_restores_the_same_faces_with_a_second_model_and_writes_a_and_b_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    // Model B: the same weights under another name, so B's result must equal A's exactly when it
    // restores the same faces A found.
    let b = tmp.path().join("other.pth");
    std::fs::copy(golden_weights(), &b).unwrap();
    let out = tmp.path().join("out");
    let id = arcface();
    let run = std::process::Command::new(bin())
        .args(["restore", "--device", "cpu", "--detector", "mtcnn", "--mask", "rectangle", "--weights"])
        .arg(golden_weights())
        .arg(photo())
        .arg("-o")
        .arg(&out)
        .arg("--compare-with")
        .arg(&b)
        .args(["--identity-weights", id.to_str().unwrap()])
        .env("XDG_DATA_HOME", tmp.path().join("data"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let a = rgb(&out.join("astronaut.png"));
    let b_result = rgb(&out.join("compare-other/astronaut.png"));
    assert!(a == b_result, "the same model on the same faces");
    let sheet = rgb(&out.join("compare/astronaut.png"));
    assert_eq!(sheet.dimensions(), (2 * a.width() + 8, a.height()));
    assert!(image::imageops::crop_imm(&sheet, 0, 0, a.width(), a.height()).to_image() == a);
    assert!(image::imageops::crop_imm(&sheet, a.width() + 8, 0, a.width(), a.height()).to_image() == b_result);
    assert!(stdout.contains("A | B in") && stdout.contains("face 0: identity A "), "{stdout}");
    // A model B that is not there: said before anything runs (status 2).
    let missing = run_with_data(
        &tmp.path().join("data"),
        &[
            os("restore"),
            os("--weights"),
            os(&golden_weights()),
            os(&photo()),
            os("-o"),
            os(&tmp.path().join("o2")),
            os("--compare-with"),
            os("nope.pth"),
        ],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(!tmp.path().join("o2").exists());
}
