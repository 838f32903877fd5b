//! Whole-photo restoration: detection, alignment, batched restoration across photos, paste-back,
//! writing — through the library (with an identity restorer that proves the geometry) and the CLI
//! (with the golden small GPEN model).

mod common;
use common::*;
use gpen_studio::detect::{FaceDetector, Mtcnn, mtcnn::default_models_dir};
use gpen_studio::error::RunError;
use gpen_studio::photo::{OutputFormat, ReadLimits};
use gpen_studio::pipeline::{Event, Outcome, PipelineOptions, restore_photos};
use gpen_studio::restorer::FaceRestorer;
use image::RgbImage;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Device;

fn photos() -> PathBuf {
    repo_root().join("../shared/photos")
}

/// Gives back the crop it was given: whatever changes in the photo is the pipeline's doing.
struct Identity {
    batches: RefCell<Vec<usize>>,
}

impl FaceRestorer for Identity {
    fn size(&self) -> u32 {
        512
    }
    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        self.batches.borrow_mut().push(faces.len());
        Ok(faces.iter().map(|f| (*f).clone()).collect())
    }
}

fn options(out: &Path, batch: usize) -> PipelineOptions {
    PipelineOptions {
        out_dir: out.into(),
        batch,
        strength: 1.0,
        format: OutputFormat::Png,
        save_faces: false,
        overwrite: false,
        limits: ReadLimits::default(),
        device: Device::Cpu,
    }
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

fn rgb(path: &Path) -> RgbImage {
    image::open(path).unwrap().to_rgb8()
}

#[test]
fn identity_restorer_round_trip_leaves_the_photo_unchanged() {
    let out = tempfile::tempdir().unwrap();
    let detector = Mtcnn::load(&default_models_dir(), Device::Cpu).unwrap();
    let restorer = Identity { batches: RefCell::new(vec![]) };
    let input = photos().join("solvay_1927.png");
    let mut done = Vec::new();
    let summary = restore_photos(&[input.clone()], &detector, &restorer, &options(out.path(), 8), &mut |e| {
        if let Event::PhotoDone { outcome, .. } = e {
            done.push((*outcome).clone());
        }
    });
    assert_eq!(summary.faces_restored, 29, "{summary}");
    assert_eq!(done, [Outcome::Restored { output: out.path().join("solvay_1927.png"), faces: 29 }]);
    // 29 faces in batches of 8: 8, 8, 8, 5.
    assert_eq!(*restorer.batches.borrow(), [8, 8, 8, 5]);
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
    let detector = Mtcnn::load(&default_models_dir(), Device::Cpu).unwrap();
    let restorer = Identity { batches: RefCell::new(vec![]) };
    let inputs = [photos().join("astronaut.png"), photos().join("solvay_1927.png")];
    let mut events = Vec::new();
    let summary = restore_photos(&inputs, &detector, &restorer, &options(out.path(), 4), &mut |e| {
        events.push(match e {
            Event::FacesFound { faces, .. } => format!("found {}", faces.len()),
            Event::BatchDone { faces, .. } => format!("batch {faces}"),
            Event::PhotoDone { input, .. } => format!("done {}", input.file_name().unwrap().to_string_lossy()),
            other => format!("{other:?}"),
        })
    });
    assert_eq!((summary.photos_restored, summary.faces_restored), (2, 30));
    // The astronaut's single face waits for Solvay's faces to fill the first batch of 4, and the
    // astronaut is written right after that batch, long before Solvay is complete.
    assert_eq!(&events[..4], ["found 1", "found 29", "batch 4", "done astronaut.png"]);
    assert_eq!(events.last().unwrap(), "done solvay_1927.png");
    assert_eq!(*restorer.batches.borrow(), [4, 4, 4, 4, 4, 4, 4, 2]);
}

fn cli_restore(inputs: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["restore", "--device", "cpu", "--batch", "8", "--weights"])
        .arg(golden_weights())
        .args(inputs)
        .arg("-o")
        .arg(out)
        .args(extra)
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
    let restorer = Identity { batches: RefCell::new(vec![]) };
    let summary = restore_photos(&[photos().join("astronaut.png")], &Blind, &restorer, &options(out.path(), 4), &mut |_| {});
    assert_eq!((summary.photos_without_faces, summary.faces_restored), (1, 0));
    assert!(restorer.batches.borrow().is_empty());
}
