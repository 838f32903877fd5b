//! Background super-resolution in the whole-photo path and on its own: the with-SR half of the
//! authors' `FaceEnhancement.process` (golden/pipeline, `--gpen-exact`), our exact-size default,
//! the `upscale` command with fixed and planned tiles, out-of-memory on a tile, and generators
//! that are not restorers (colorization) refusing to restore.

mod common;

use common::{bin, golden, golden_weights, interrupt_when, os, repo_root, rgb, run_with_data as run};
use gpen_studio::upscale::{PhotoUpscaler, upscale_with_retry};
use gpen_studio::upscale::{Tiles, Upscaler};
use image::RgbImage;
use std::path::PathBuf;
use std::process::Command;
use tch::Device;

fn pipeline() -> PathBuf {
    golden().join("pipeline")
}

fn x2() -> PathBuf {
    golden().join("rrdbnet/x2.pth")
}

/// (mean, max, share of values over 1 level, share differing) of two images of one size.
fn diff(a: &RgbImage, b: &RgbImage) -> (f64, u8, f64, f64) {
    assert_eq!(a.dimensions(), b.dimensions());
    let d: Vec<u8> = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).collect();
    let n = d.len() as f64;
    let mean = d.iter().map(|&v| v as f64).sum::<f64>() / n;
    (mean, *d.iter().max().unwrap(), d.iter().filter(|&&v| v > 1).count() as f64 / n, d.iter().filter(|&&v| v > 0).count() as f64 / n)
}

#[test]
fn restore_with_sr_in_the_authors_sizes_equals_their_photo() {
    for case in ["solvay", "astronaut"] {
        let tmp = tempfile::tempdir().unwrap();
        let faces_json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(pipeline().join(format!("{case}-faces.json"))).unwrap()).unwrap();
        // The faces in the input's pixels (the golden's no-SR faces); `restore` scales them with the photo.
        let faces: Vec<serde_json::Value> = faces_json["nosr"]["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| serde_json::json!({ "box": &f["det"].as_array().unwrap()[..4], "score": 0.99, "landmarks": f["landmarks"] }))
            .collect();
        let faces_file = tmp.path().join("faces.json");
        std::fs::write(&faces_file, serde_json::json!({ format!("{case}-input.png"): { "faces": faces } }).to_string()).unwrap();
        let out = tmp.path().join("out");
        let input = pipeline().join(format!("{case}-input.png"));
        let result = run(
            tmp.path(),
            &[
                os("restore"),
                os("--device"),
                os("cpu"),
                os("--workers"),
                os("1"),
                os("--save-faces"),
                os("--weights"),
                golden_weights().as_os_str(),
                os("--mask"),
                os("parser"),
                os("--parser-weights"),
                golden().join("parsenet/weights.pth").as_os_str(),
                os("--parser-size"),
                os("256"),
                os("--upscale"),
                os("2"),
                os("--sr-weights"),
                x2().as_os_str(),
                os("--gpen-exact"),
                os("--faces"),
                faces_file.as_os_str(),
                input.as_os_str(),
                os("-o"),
                out.as_os_str(),
            ],
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        assert!(stderr.contains("background upscaled ×2"), "{stderr}");
        let ours = rgb(&out.join(format!("{case}-input.png")));
        let theirs = rgb(&pipeline().join(format!("{case}-output_sr.png")));
        let (mean, max, over1, _) = diff(&ours, &theirs);
        println!("{case} with SR: mean {mean:.4}, max {max}, > 1 level {:.3} %", over1 * 100.0);
        assert!(mean <= 0.05 && over1 <= 0.001, "{case}: mean {mean}, over 1 level {over1}");
        for i in 0..faces.len() {
            let pair = rgb(&out.join(format!("{case}-input_face{i:02}.png")));
            let aligned = image::imageops::crop_imm(&pair, 0, 0, 64, 64).to_image();
            let (mean, max, _, _) = diff(&aligned, &rgb(&pipeline().join(format!("{case}-sr-face{i:02}-orig.png"))));
            assert!(max <= 1 && mean <= 0.01, "{case} face {i}: crops cut from the bilinear upscale: max {max}, mean {mean}");
        }
    }
}

#[test]
fn the_background_is_their_sr_output_and_our_default_is_exactly_twice_the_size() {
    let up = Upscaler::load(&x2(), Device::Cpu).unwrap();
    for case in ["solvay", "astronaut"] {
        let input = rgb(&pipeline().join(format!("{case}-input.png")));
        let theirs = rgb(&pipeline().join(format!("{case}-sr-background.png")));
        let exact = up.process(&input, None, true).unwrap();
        let (_, max, _, differing) = diff(&exact, &theirs);
        assert!(max <= 1 && differing <= 0.005, "{case}: max {max}, {:.3} % differ", differing * 100.0);
        let ours = up.process(&input, None, false).unwrap();
        assert_eq!(ours.dimensions(), (2 * input.width(), 2 * input.height()));
        assert_eq!(ours, image::imageops::crop_imm(&exact, 0, 0, ours.width(), ours.height()).to_image());
    }
    // The whole path at the default size: the photo comes out exactly twice as large.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let solvay = pipeline().join("solvay-input.png");
    let result = run(
        tmp.path(),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--detector"),
            os("mtcnn"),
            os("--weights"),
            golden_weights().as_os_str(),
            os("--upscale"),
            os("2"),
            os("--sr-weights"),
            x2().as_os_str(),
            solvay.as_os_str(),
            os("-o"),
            out.as_os_str(),
        ],
    );
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(rgb(&out.join("solvay-input.png")).dimensions(), (802, 406));
    // The dry run shows the SR plan with its arithmetic, and restores nothing.
    let dry = run(
        tmp.path(),
        &[
            os("restore"),
            os("--dry-run"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            golden_weights().as_os_str(),
            os("--upscale"),
            os("2"),
            os("--sr-weights"),
            x2().as_os_str(),
            solvay.as_os_str(),
            os("-o"),
            tmp.path().join("never").as_os_str(),
        ],
    );
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success() && stdout.contains("upscale ×2: whole photo:") && stdout.contains("first photo, 401x203"), "{stdout}");
    assert!(!tmp.path().join("never").exists());
}

/// The real upscaler on a device that runs out of memory for tiles over `limit` px (or whole
/// photos over it).
struct Tight {
    inner: Upscaler,
    limit: u32,
}

impl PhotoUpscaler for Tight {
    fn scale(&self) -> u32 {
        self.inner.scale()
    }
    fn upscale(
        &self,
        image: &RgbImage,
        tiles: Option<Tiles>,
        exact: bool,
        stop: &mut gpen_studio::error::Interrupt<'_>,
    ) -> Result<RgbImage, gpen_studio::error::RunError> {
        let side = tiles.map_or(image.width().max(image.height()), |t| t.size);
        if side > self.limit {
            return Err(gpen_studio::error::RunError::OutOfMemory(format!("CUDA out of memory (tile {side})")));
        }
        self.inner.upscale(image, tiles, exact, stop)
    }
    fn bytes_per_input_pixel(&self) -> u64 {
        self.inner.bytes_per_input_pixel()
    }
}

#[test]
fn out_of_memory_on_a_tile_halves_it_and_the_result_is_that_tile_s() {
    let input = rgb(&golden().join("rrdbnet/x2-tiled-input.png"));
    let tight = Tight { inner: Upscaler::load(&x2(), Device::Cpu).unwrap(), limit: 40 };
    let done = upscale_with_retry(&tight, &input, None, false, &mut || false).unwrap();
    // 101 px whole → 50 → 32 (the smallest tile), each with the authors' 10 px of context.
    assert_eq!((done.oom_events, done.tiles), (2, Some(Tiles { size: 32, pad: 10 })));
    let direct = tight.inner.process(&input, Some(Tiles { size: 32, pad: 10 }), false).unwrap();
    assert_eq!(done.image, direct, "the retry gives exactly what that tile gives");
    let untiled = tight.inner.process(&input, None, false).unwrap();
    let (_, max, _, _) = diff(&done.image, &untiled);
    assert!(max <= 3, "tiles move the output only by their seams: {max}");
}

#[test]
fn the_upscale_command_meets_the_tiled_golden_and_plans_tiles_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let input = golden().join("rrdbnet/x2-tiled-input.png");
    let fixed = tmp.path().join("fixed");
    let result = run(
        tmp.path(),
        &[
            os("upscale"),
            os("--device"),
            os("cpu"),
            os("--sr-weights"),
            x2().as_os_str(),
            os("--tile"),
            os("24"),
            os("--tile-pad"),
            os("10"),
            os("--gpen-exact"),
            input.as_os_str(),
            os("-o"),
            fixed.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("101x71 -> 203x143, tiles of 24 px (--tile)"), "{stderr}");
    let (_, max, _, differing) = diff(&rgb(&fixed.join("x2-tiled-input.png")), &rgb(&golden().join("rrdbnet/x2-tiled-output.png")));
    assert!(max <= 1 && differing <= 0.005, "max {max}, {:.3} % differ", differing * 100.0);

    let planned = tmp.path().join("planned");
    let result = run(
        tmp.path(),
        &[os("upscale"), os("--device"), os("cpu"), os("--sr-weights"), x2().as_os_str(), input.as_os_str(), os("-o"), planned.as_os_str()],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success() && stderr.contains("101x71 -> 202x142, whole photo:"), "{stderr}");
    let again = run(
        tmp.path(),
        &[os("upscale"), os("--device"), os("cpu"), os("--sr-weights"), x2().as_os_str(), input.as_os_str(), os("-o"), planned.as_os_str()],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("photos upscaled 0, already done 1, failed 0"));
    // A ×4 file upscales ×4 unless told otherwise; asked to do ×2, it says so.
    let x4_weights = golden().join("rrdbnet/x4.pth");
    let x4 = |extra: &[&std::ffi::OsStr], out: &str| {
        let out = tmp.path().join(out);
        let head = [os("upscale"), os("--device"), os("cpu"), os("--sr-weights"), x4_weights.as_os_str()];
        run(tmp.path(), &[&head[..], extra, &[input.as_os_str(), os("-o"), out.as_os_str()]].concat())
    };
    let own = x4(&[], "x4");
    assert!(own.status.success(), "{}", String::from_utf8_lossy(&own.stderr));
    assert_eq!(image::image_dimensions(tmp.path().join("x4/x2-tiled-input.png")).unwrap(), (404, 284), "the file's own ×4");
    let wrong = x4(&[os("--scale"), os("2")], "w");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("upscales ×4, not ×2"), "{}", String::from_utf8_lossy(&wrong.stderr));
}

/// Ctrl-C during `upscale` cancels the run as `restore`'s does: the photos finished stay whole, the
/// rest are not written, the summary counts them, and the status is 130.
#[test]
fn ctrl_c_cancels_the_upscale_command_and_keeps_what_is_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let n = 20;
    for i in 0..n {
        std::fs::copy(repo_root().join("../shared/photos/solvay_1927.png"), inputs.join(format!("p{i:02}.png"))).unwrap();
    }
    let out = tmp.path().join("out");
    let mut upscale = Command::new(bin());
    upscale
        .args(["upscale", "--device", "cpu", "--sr-weights"])
        .arg(x2())
        .arg(&inputs)
        .arg("-o")
        .arg(&out)
        .env("XDG_DATA_HOME", tmp.path());
    // A photo's line comes once it is written.
    let (status, all) = interrupt_when(&mut upscale, |l| l.contains("1328x568 -> 2656x1136"));
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(all.contains("cancelling: the photo being upscaled stops") && all.contains(", cancelled "), "{all}");
    let written: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!written.is_empty() && written.len() < n, "{written:?}");
    for path in &written {
        assert_eq!(image::image_dimensions(path).unwrap(), (2656, 1136), "{} is whole", path.display());
    }
}

#[test]
fn a_colorization_checkpoint_refuses_to_restore_and_colorizes_aligned_faces() {
    let tmp = tempfile::tempdir().unwrap();
    // GPEN's colorization file has a restorer's shapes; its name says what it is.
    let colorizer = tmp.path().join("GPEN-Colorization-64.pth");
    std::fs::copy(golden_weights(), &colorizer).unwrap();
    let photo = pipeline().join("astronaut-input.png");
    let refused = run(
        tmp.path(),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            colorizer.as_os_str(),
            photo.as_os_str(),
            os("-o"),
            tmp.path().join("r").as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a colorize model; it cannot restore"), "{stderr}");
    assert!(!tmp.path().join("r").exists(), "nothing ran");

    // An aligned face of another size than the model's: colours from the model, luminance kept.
    let face = tmp.path().join("face.png");
    image::imageops::resize(
        &rgb(&golden().join("align/solvay_1927_face00_aligned512.png")),
        100,
        100,
        image::imageops::FilterType::Triangle,
    )
    .save(&face)
    .unwrap();
    let out = tmp.path().join("c");
    let done = run(
        tmp.path(),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--aligned"),
            os("--task"),
            os("colorize"),
            os("--weights"),
            colorizer.as_os_str(),
            face.as_os_str(),
            os("-o"),
            out.as_os_str(),
        ],
    );
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let (input, result) = (rgb(&face), rgb(&out.join("face.png")));
    assert_eq!(result.dimensions(), (100, 100));
    let luma = |p: &image::Rgb<u8>| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
    // Where the colours fit in 8 bits (no channel clipped, as cvtColor saturates), the luminance is
    // the input's; the random golden model paints strong colours, so some pixels clip.
    let unclipped: Vec<f32> = input
        .pixels()
        .zip(result.pixels())
        .filter(|(_, b)| b.0.iter().all(|&c| c > 0 && c < 255))
        .map(|(a, b)| (luma(a) - luma(b)).abs())
        .collect();
    assert!(unclipped.len() > 1000, "most pixels are not clipped: {}", unclipped.len());
    let worst = unclipped.iter().copied().fold(0f32, f32::max);
    assert!(worst <= 3.0, "the input's luminance is kept: {worst}");
    assert_ne!(
        rgb(&out.join("face.png")),
        image::imageops::resize(&input, 100, 100, image::imageops::FilterType::Triangle),
        "colours changed"
    );
    // A restorer asked to colorize refuses too.
    let restorer = tmp.path().join("GPEN-BFR-64.pth");
    std::fs::copy(golden_weights(), &restorer).unwrap();
    let wrong = run(
        tmp.path(),
        &[
            os("restore"),
            os("--device"),
            os("cpu"),
            os("--aligned"),
            os("--task"),
            os("colorize"),
            os("--weights"),
            restorer.as_os_str(),
            face.as_os_str(),
            os("-o"),
            tmp.path().join("x").as_os_str(),
        ],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("is a restore model; it cannot colorize"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

#[test]
fn calibrate_measures_the_upscaler_and_tile_plans_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config_home = tmp.path().join("config");
    let store = config_home.join("gpen-studio/calibrations.json");
    let cal = run(
        tmp.path(),
        &[
            os("calibrate"),
            os("--device"),
            os("cpu"),
            os("--weights"),
            golden_weights().as_os_str(),
            os("--sr-weights"),
            x2().as_os_str(),
            os("--store"),
            store.as_os_str(),
        ],
    );
    let stdout = String::from_utf8_lossy(&cal.stdout);
    assert!(cal.status.success(), "{}", String::from_utf8_lossy(&cal.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
    let per_pixel = json["sr"][0]["per_input_pixel"].as_u64().expect("an SR calibration is stored");
    assert_eq!(json["sr"][0]["config"], "x2-f16-b2-g8");
    assert!(stdout.contains(&format!("→ {per_pixel} B a pixel of input")), "{stdout}");
    // The analytic estimate is the floor of a calibration.
    let analytic = gpen_studio::upscale::bytes_per_input_pixel(&Upscaler::load(&x2(), Device::Cpu).unwrap().config());
    assert!(per_pixel >= analytic / 2, "{per_pixel} vs analytic {analytic}");
    let dry = Command::new(bin())
        .args(["restore", "--dry-run", "--device", "cpu", "--upscale", "2", "--weights"])
        .arg(golden_weights())
        .arg("--sr-weights")
        .arg(x2())
        .arg(pipeline().join("solvay-input.png"))
        .arg("-o")
        .arg(tmp.path().join("never"))
        .env("XDG_DATA_HOME", tmp.path())
        .env("XDG_CONFIG_HOME", &config_home)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(stdout.contains(&format!("{per_pixel} B a pixel of input")), "the plan uses the calibration: {stdout}");
}
