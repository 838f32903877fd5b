//! Whole-photo restoration: detection, alignment, batched restoration across photos, paste-back,
//! writing — through the engine (with an identity restorer that proves the geometry) and the CLI
//! (with the golden small GPEN model), with every step on one thread and on stage workers.

mod common;
use common::*;
use gpen_studio::config::{RunConfig, Workers};
use gpen_studio::detect::{FaceDetector, Mtcnn, mtcnn::default_models_dir};
use gpen_studio::device::DeviceChoice;
use gpen_studio::engine::worker::{Command as EngineCommand, Components, EngineEvent, spawn};
use gpen_studio::error::RunError;
use gpen_studio::pipeline::{Outcome, Summary};
use gpen_studio::restore::FaceRestorer;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn photos() -> PathBuf {
    repo_root().join("../shared/photos")
}

/// Gives back the crop it was given: whatever changes in the photo is the pipeline's doing.
struct Identity {
    batches: Arc<Mutex<Vec<usize>>>,
}

impl FaceRestorer for Identity {
    fn size(&self) -> u32 {
        512
    }
    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        self.batches.lock().unwrap().push(faces.len());
        Ok(faces.iter().map(|f| (*f).clone()).collect())
    }
}

/// Runs `inputs` through the engine with the identity restorer, `batch` faces a call, and
/// `detector` (MTCNN when `None`); returns the events and the batch sizes the restorer saw.
fn run_identity(
    inputs: &[PathBuf],
    out: &Path,
    batch: usize,
    workers: Workers,
    detector: Option<fn() -> Box<dyn FaceDetector + Send>>,
) -> (Vec<EngineEvent>, Vec<usize>) {
    let batches = Arc::new(Mutex::new(Vec::new()));
    let seen = batches.clone();
    let config = RunConfig {
        device: DeviceChoice::Cpu,
        out_dir: out.into(),
        batch_override: Some(batch),
        workers,
        preview_side: 0,
        monitor_interval: Duration::from_millis(50),
        ..RunConfig::default()
    };
    let components = Components {
        restorer: Box::new(move |_, _| Ok(Box::new(Identity { batches: seen.clone() }) as Box<dyn FaceRestorer>)),
        fallback: Box::new(|_, _| None),
        detector: Box::new(move |_, device| match detector {
            Some(make) => Ok(make()),
            None => Mtcnn::load(&default_models_dir(), device)
                .map(|m| Box::new(m) as Box<dyn FaceDetector + Send>)
                .map_err(|e| gpen_studio::error::SetupError::Load(e.to_string())),
        }),
        ..Components::real()
    };
    let engine = spawn(config, components, Box::new(|| {}));
    engine.send(EngineCommand::Enqueue(inputs.iter().cloned().enumerate().map(|(i, p)| (i as u64, p)).collect()));
    engine.send(EngineCommand::Start);
    let mut events = Vec::new();
    loop {
        let e = engine.events.recv_timeout(Duration::from_secs(120)).expect("the run finishes");
        if let EngineEvent::ModelError(m) = &e {
            panic!("{m}");
        }
        let done = matches!(e, EngineEvent::Finished(_));
        events.push(e);
        if done {
            break;
        }
    }
    engine.shutdown();
    let seen = batches.lock().unwrap().clone();
    (events, seen)
}

fn summary(events: &[EngineEvent]) -> Summary {
    events.iter().find_map(|e| if let EngineEvent::Finished(s) = e { Some(s.clone()) } else { None }).unwrap()
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

#[test]
fn identity_restorer_round_trip_leaves_the_photo_unchanged() {
    let out = tempfile::tempdir().unwrap();
    let input = photos().join("solvay_1927.png");
    let (events, batches) = run_identity(std::slice::from_ref(&input), out.path(), 8, Workers::Fixed(1), None);
    let s = summary(&events);
    assert_eq!(s.faces_restored, 29, "{s}");
    let done: Vec<&PathBuf> = events
        .iter()
        .filter_map(|e| if let EngineEvent::PhotoEnded { outcome: Outcome::Restored { output, .. }, .. } = e { Some(output) } else { None })
        .collect();
    assert_eq!(done, [&out.path().join("solvay_1927.png")]);
    // 29 faces in batches of 8: 8, 8, 8, 5.
    assert_eq!(batches, [8, 8, 8, 5]);
    let result = rgb(&out.path().join("solvay_1927.png"));
    let original = rgb(&input); // alpha dropped, as the pipeline reads it
    let db = psnr(&result, &original);
    eprintln!("identity round trip: PSNR {db:.2} dB");
    assert!(db >= 40.0, "PSNR {db:.1} dB: seams, a shift or a colour change");
    // The faces really went through the paste: the result is not a byte copy.
    assert_ne!(result, original);
}

#[test]
fn faces_of_several_photos_share_batches_and_each_photo_is_written_once_complete() {
    let out = tempfile::tempdir().unwrap();
    let inputs = [photos().join("astronaut.png"), photos().join("solvay_1927.png")];
    let (events, batches) = run_identity(&inputs, out.path(), 4, Workers::Fixed(1), None);
    let s = summary(&events);
    assert_eq!((s.photos_restored, s.faces_restored), (2, 30));
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::FacesFound { id, faces, .. } => Some(format!("found {id}: {}", faces.len())),
            EngineEvent::PhotoEnded { id, outcome: Outcome::Restored { .. }, .. } => Some(format!("done {id}")),
            _ => None,
        })
        .collect();
    // The astronaut's single face waits for Solvay's faces to fill the first batch of 4, and the
    // astronaut is written right after that batch, long before Solvay is complete.
    assert_eq!(order, ["found 0: 1", "found 1: 29", "done 0", "done 1"]);
    assert_eq!(batches, [4, 4, 4, 4, 4, 4, 4, 2]);
}

fn cli_restore(inputs: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["restore", "--device", "cpu", "--batch", "8", "--weights"])
        .arg(golden_weights())
        .args(inputs)
        .arg("-o")
        .arg(out)
        .args(extra)
        // An empty data folder: add-ons installed on this machine do not change what `auto` picks.
        .env("XDG_DATA_HOME", std::env::temp_dir().join("gpen-studio-tests-no-data-folder"))
        .output()
        .unwrap()
}

#[test]
fn restore_command_on_real_photos_with_the_small_golden_model() {
    let out = tempfile::tempdir().unwrap();
    let inputs = [photos().join("solvay_1927.png"), photos().join("astronaut.png")];
    let run = cli_restore(&[&inputs[0], &inputs[1]], out.path(), &["--format", "jpg", "--save-faces"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("photos restored 2, without faces 0, already done 0, failed 0; faces restored 30, failed 0"), "{stderr}");
    assert_eq!(rgb(&out.path().join("solvay_1927.jpg")).dimensions(), (1328, 568));
    assert_eq!(rgb(&out.path().join("astronaut.jpg")).dimensions(), (512, 512));
    // --save-faces: aligned | restored, at the model's size (64).
    assert_eq!(rgb(&out.path().join("astronaut_face00.png")).dimensions(), (128, 64));
    assert!(out.path().join("solvay_1927_face28.png").exists());
    // A second run finds everything done and changes nothing.
    let before = snapshot(out.path());
    let again = cli_restore(&[&inputs[0], &inputs[1]], out.path(), &["--format", "jpg"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already done 2"));
    assert_eq!(snapshot(out.path()), before);
}

#[test]
fn a_bad_file_and_a_faceless_photo_do_not_stop_the_others() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::copy(photos().join("astronaut.png"), input.path().join("astronaut.png")).unwrap();
    std::fs::write(input.path().join("broken.jpg"), b"not really a jpeg").unwrap();
    RgbImage::from_fn(160, 120, |x, y| image::Rgb([(x + y) as u8, 90, 200])).save(input.path().join("sky.png")).unwrap();
    let before = snapshot(input.path());

    let run = cli_restore(&[input.path()], out.path(), &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a failed photo makes the exit status non-zero");
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    assert!(stderr.contains("sky.png: no faces found"), "{stderr}");
    assert!(stderr.contains("photos restored 1, without faces 1, already done 0, failed 1; faces restored 1, failed 0"), "{stderr}");
    assert_eq!(snapshot(input.path()), before, "inputs are byte-identical");
    let written: Vec<String> = snapshot(out.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(written, ["astronaut.png", "sky.png"], "no partial or temporary files");
    assert_eq!(rgb(&out.path().join("sky.png")), rgb(&input.path().join("sky.png")));
}

#[test]
fn detector_trait_is_what_the_pipeline_uses() {
    // A detector that finds nothing turns every photo into a "without faces" copy.
    struct Blind;
    impl FaceDetector for Blind {
        fn detect(&self, _: &RgbImage) -> Result<Vec<gpen_studio::detect::Face>, gpen_studio::detect::DetectError> {
            Ok(vec![])
        }
    }
    let out = tempfile::tempdir().unwrap();
    let blind: fn() -> Box<dyn FaceDetector + Send> = || Box::new(Blind);
    let (events, batches) = run_identity(&[photos().join("astronaut.png")], out.path(), 4, Workers::Fixed(2), Some(blind));
    let s = summary(&events);
    assert_eq!((s.photos_without_faces, s.faces_restored), (1, 0));
    assert!(batches.is_empty());
}

#[test]
fn staged_workers_write_byte_identical_files_to_one_thread() {
    // Real MTCNN and the golden GPEN, batches of 8 faces of the two photos mixed.
    let input = tempfile::tempdir().unwrap();
    for name in ["solvay_1927.png", "astronaut.png", "solvay_1927_official_gpen_result.jpg"] {
        std::fs::copy(photos().join(name), input.path().join(name)).unwrap();
    }
    let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = cli_restore(&[input.path()], one.path(), &["--workers", "1", "--format", "jpg"]);
    let b = cli_restore(&[input.path()], many.path(), &["--workers", "3", "--format", "jpg"]);
    for run in [&a, &b] {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success() && stderr.contains("photos restored 3"), "{stderr}");
    }
    assert!(String::from_utf8_lossy(&a.stderr).contains("every step on one thread"));
    assert!(String::from_utf8_lossy(&b.stderr).contains("3 detection workers, 1 writer(s)"));
    assert_same_files(one.path(), many.path(), 3, "--workers 1 and 3");

    // With the face parser too: its masks are made on the engine's thread in both modes.
    let parser = common::golden().join("parsenet/weights.pth");
    let parsed = ["--mask", "parser", "--parser-weights", parser.to_str().unwrap(), "--parser-size", "256"];
    let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = cli_restore(&[input.path()], one.path(), &[&["--workers", "1"][..], &parsed].concat());
    let b = cli_restore(&[input.path()], many.path(), &[&["--workers", "3"][..], &parsed].concat());
    for run in [&a, &b] {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success() && stderr.contains("paste mask: face-parsing mask"), "{stderr}");
    }
    assert_same_files(one.path(), many.path(), 3, "--workers 1 and 3 with the parser");
}

#[test]
fn dry_run_prints_the_plan_and_restores_nothing() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("never-created");
    let run = cli_restore(&[&photos()], &target, &["--dry-run", "--workers", "2"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for want in [
        "3 photos found",
        "model: GPEN 64 (channel_multiplier 1, narrow 0.125), fp32",
        "device: cpu CPU (system RAM)",
        "memory model: ",
        "batch 8: batch fixed at 8 by the user (the memory plan said 1: ",
        "2 detection workers, 1 writer(s)",
        "nothing was restored (--dry-run)",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!target.exists(), "a dry run writes nothing, not even the output folder");
}

/// A name the file system took as an input works as an output, even when the run adds to it: the
/// temporary file beside the result, a longer extension, and the saved faces' `_faceNN` stay within
/// the 255-byte limit (the start of the name is kept, with a hash of the whole).
#[test]
fn a_photo_named_up_to_the_file_system_s_limit_is_restored_with_its_faces() {
    let input = tempfile::tempdir().unwrap();
    let stem = "a".repeat(251);
    let photo = input.path().join(format!("{stem}.png"));
    std::fs::copy(photos().join("astronaut.png"), &photo).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run =
        cli_restore(&[photo.as_path()], out.path(), &["--format", "webp", "--save-faces", "--detector", "mtcnn", "--mask", "rectangle"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let names: Vec<String> =
        std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let results: Vec<&String> = names.iter().filter(|n| n.ends_with(".webp")).collect();
    let faces = names.iter().filter(|n| n.contains("_face") && n.ends_with(".png")).count();
    assert!(results.len() == 1 && results[0].starts_with(&stem[..200]), "{names:?}");
    assert!(faces >= 1, "the saved faces are there too: {names:?}");
    assert!(names.iter().all(|n| n.len() <= 255 && !gpen_studio::paths::is_partial_name(n)), "{names:?}");
    assert_eq!(image::image_dimensions(out.path().join(results[0])).unwrap(), image::image_dimensions(&photo).unwrap());
}
