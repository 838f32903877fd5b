//! Background super-resolution matches GPEN's official code (golden/rrdbnet: the official `RRDBNet`
//! with seeded random weights, run through `RealESRNet.process`, whole and tiled), and the released
//! configurations register the official checkpoint keys.

mod common;
use common::*;
use gpen_studio::checkpoint::{CheckpointError, read_tensors};
use gpen_studio::upscale::{RrdbConfig, SrError, Tiles, Upscaler, bytes_per_input_pixel, infer_config, output_size, padded_input};
use image::RgbImage;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn dir() -> PathBuf {
    golden().join("rrdbnet")
}

fn load(name: &str) -> Upscaler {
    Upscaler::load(&dir().join(name), Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The pass criteria for uint8 outputs: same size, max |diff| <= 1 level, <= 0.5 % of values differ.
fn assert_close_u8(what: &str, got: &RgbImage, want: &RgbImage) {
    assert_eq!(got.dimensions(), want.dimensions(), "{what}: size");
    let diffs: Vec<u8> = got.as_raw().iter().zip(want.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
    let max = *diffs.iter().max().unwrap();
    let differing = diffs.iter().filter(|&&d| d != 0).count() as f64 / diffs.len() as f64;
    println!("{what}: {}x{}, max |diff| {max}, {:.4} % of values differ", got.width(), got.height(), 100.0 * differing);
    assert!(max <= 1, "{what}: max |diff| {max}");
    assert!(differing <= 0.005, "{what}: {:.4} % differ", 100.0 * differing);
}

#[test]
fn released_configurations_register_the_official_keys() {
    for (file, config) in [
        ("keys-esrnet-x1.tsv", RrdbConfig::esrnet(1)),
        ("keys-esrnet-x2.tsv", RrdbConfig::esrnet(2)),
        ("keys-esrnet-x4.tsv", RrdbConfig::esrnet(4)),
        ("keys-esrgan-x4plus.tsv", RrdbConfig::ESRGAN_X4PLUS),
    ] {
        let want = common::read_key_table(&dir().join(file));
        assert_eq!(want.len(), 702, "{file}");
        let got = Upscaler::with_config(config, Device::Cpu).unwrap().shapes();
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{file}: missing {missing:?}, extra {extra:?}");
        for (k, s) in &want {
            assert_eq!(&got[k], s, "{file}: {k}");
        }
        // The configuration comes back from the shapes alone.
        assert_eq!(infer_config(&want).unwrap(), config, "{file}");
        let params: i64 = want.values().map(|s| s.iter().product::<i64>()).sum();
        println!("{file}: {config}, {params} parameters");
        if config == RrdbConfig::esrnet(4) {
            assert!((params as f64 / 1e6 - 9.59).abs() < 0.01, "{params}");
        }
    }
}

#[test]
fn golden_configurations_are_inferred() {
    for (name, scale) in [("x2.pth", 2), ("x4.pth", 4)] {
        let up = load(name);
        let want = RrdbConfig { num_in_ch: 3, num_out_ch: 3, num_feat: 16, num_block: 2, num_grow_ch: 8, scale };
        assert_eq!(up.config(), want, "{name}");
        assert_eq!(up.scale(), scale);
        assert_eq!(up.device(), Device::Cpu);
    }
}

#[test]
fn padded_input_matches_the_reference() {
    for (scale, hw) in [(2, [48, 62]), (4, [47, 61])] {
        let img = rgb(&dir().join(format!("x{scale}-input.png")));
        let x = padded_input(&img, scale).unwrap();
        let want = read_npy(&dir().join(format!("x{scale}-input_padded.npy")));
        assert_eq!(x.size(), [1, 3, hw[0], hw[1]]);
        let d = max_abs_diff(&x, &want);
        println!("x{scale} padded input max |diff| {d:.3e}");
        assert!(d <= 1e-6, "x{scale}: {d}");
    }
    // Reflection, not replication: the padded row 47 repeats row 45 (x4's scale pads nothing).
    let img = rgb(&dir().join("x2-input.png"));
    let x = padded_input(&img, 2).unwrap();
    assert_eq!(max_abs_diff(&x.narrow(2, 47, 1), &x.narrow(2, 45, 1)), 0.0);
    assert_eq!(max_abs_diff(&x.narrow(3, 61, 1), &x.narrow(3, 59, 1)), 0.0);
    assert!(max_abs_diff(&x.narrow(2, 47, 1), &x.narrow(2, 46, 1)) > 0.0);
    // Scale 1 pads to a multiple of 4.
    assert_eq!(padded_input(&img, 1).unwrap().size(), [1, 3, 48, 64]);
    assert!(matches!(padded_input(&RgbImage::new(1, 5), 2), Err(SrError::Input(_))));
}

#[test]
fn raw_outputs_match_the_reference() {
    for name in ["x2", "x4"] {
        let up = load(&format!("{name}.pth"));
        let x = read_npy(&dir().join(format!("{name}-input_padded.npy")));
        let want = read_npy(&dir().join(format!("{name}-raw.npy")));
        let got = up.forward_raw(&x).unwrap();
        let d = max_abs_diff(&got, &want);
        println!("{name} raw max |diff| {d:.3e}");
        assert!(d <= 1e-4, "{name} raw max |diff| {d}");
    }
}

#[test]
fn processed_outputs_match_the_reference() {
    for name in ["x2", "x4"] {
        let up = load(&format!("{name}.pth"));
        let img = rgb(&dir().join(format!("{name}-input.png")));
        let exact = up.process(&img, None, true).unwrap();
        assert_close_u8(&format!("{name} exact"), &exact, &rgb(&dir().join(format!("{name}-output.png"))));
        // Our default: exactly scale x the input, the exact result without the leftover pad.
        let s = up.scale();
        let ours = up.process(&img, None, false).unwrap();
        assert_eq!(ours.dimensions(), (s * 61, s * 47));
        assert_eq!(ours, image::imageops::crop_imm(&exact, 0, 0, s * 61, s * 47).to_image());
    }
    assert_eq!(output_size(61, 47, 2, true), (123, 95));
    assert_eq!(output_size(61, 47, 2, false), (122, 94));
    assert_eq!(output_size(61, 47, 4, true), (244, 188));
    assert_eq!(output_size(61, 47, 1, true), (61, 47));
    assert_eq!(output_size(62, 48, 2, true), (124, 96));
}

#[test]
fn tiled_output_matches_the_reference() {
    let up = load("x2.pth");
    let img = rgb(&dir().join("x2-tiled-input.png"));
    assert_eq!(img.dimensions(), (101, 71));
    let tiles = Tiles { size: 24, pad: 10 };

    // The grid is the one the golden generator recorded.
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    let recorded: Vec<(u32, u32)> = config["models"]["x2"]["tiled"]["tile_input_hw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hw| (hw[0].as_u64().unwrap() as u32, hw[1].as_u64().unwrap() as u32))
        .collect();
    let grid: Vec<(u32, u32)> = tiles.grid(102, 72).iter().map(|t| (t.context.h, t.context.w)).collect();
    assert_eq!(grid, recorded);

    let tiled = up.process(&img, Some(tiles), true).unwrap();
    assert_close_u8("x2 tiled exact", &tiled, &rgb(&dir().join("x2-tiled-output.png")));
    let untiled = up.process(&img, None, true).unwrap();
    assert_close_u8("x2 untiled (tiled crop)", &untiled, &rgb(&dir().join("x2-tiled-input-untiled-output.png")));
    // The tiles really are run separately: the seams differ from the untiled result.
    assert_ne!(tiled, untiled);
    let ours = up.process(&img, Some(tiles), false).unwrap();
    assert_eq!(ours.dimensions(), (202, 142));
    assert_eq!(ours, image::imageops::crop_imm(&tiled, 0, 0, 202, 142).to_image());

    // One tile covering everything is the untiled network, bit for bit.
    let x = padded_input(&img, 2).unwrap();
    let whole = up.forward_raw(&x).unwrap();
    let one = up.forward_tiled(&x, Tiles { size: 128, pad: 10 }, &mut || false).unwrap();
    assert_eq!(max_abs_diff(&whole, &one), 0.0);

    // Tiles the pixel-unshuffle cannot take are refused, not a panic.
    for bad in [Tiles { size: 23, pad: 10 }, Tiles { size: 24, pad: 3 }, Tiles { size: 0, pad: 0 }] {
        let err = up.process(&img, Some(bad), true).unwrap_err();
        assert!(matches!(err, SrError::Input(_)), "{bad:?}: {err}");
        assert!(err.to_string().contains("multiples of 2"), "{err}");
    }
}

/// The network asks whether to stop before every block of its body, in every tile, and stops
/// there when told: this is how the engine's cancel reaches a photo's super-resolution.
#[test]
fn the_upscaler_asks_to_stop_before_each_block_and_stops_when_told() {
    let up = load("x2.pth");
    let img = rgb(&dir().join("x2-tiled-input.png"));
    let blocks = up.config().num_block as usize;
    let mut asked = 0;
    let whole = up.process_until(&img, None, true, &mut || {
        asked += 1;
        false
    });
    assert_eq!(whole.unwrap(), up.process(&img, None, true).unwrap(), "asking changes nothing");
    assert_eq!(asked, blocks);
    let tiles = Tiles { size: 24, pad: 10 };
    asked = 0;
    up.process_until(&img, Some(tiles), true, &mut || {
        asked += 1;
        false
    })
    .unwrap();
    assert_eq!(asked, tiles.grid(102, 72).len() * blocks, "every block of every tile");
    asked = 0;
    let stopped = up.process_until(&img, Some(tiles), true, &mut || {
        asked += 1;
        asked == 3
    });
    assert!(matches!(stopped, Err(SrError::Run(gpen_studio::error::RunError::Interrupted))), "{stopped:?}");
    assert_eq!(asked, 3, "nothing runs after the stop");
}

#[test]
fn wrong_files_are_clear_errors() {
    for file in ["gpen-64/weights.pth", "parsenet/weights.pth"] {
        let err = Upscaler::load(&golden().join(file), Device::Cpu).unwrap_err();
        assert!(matches!(err, SrError::NotRrdb { .. }), "{file}: {err}");
        assert!(err.to_string().contains("does not hold an RRDBNet"), "{err}");
    }
    let err = Upscaler::load(Path::new("/nonexistent/realesrnet_x2.pth"), Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");

    // The golden x2 state dict without one tensor, re-wrapped: the strict check names the key.
    let tmp = tempfile::tempdir().unwrap();
    let tensors = read_tensors(&dir().join("x2.pth")).unwrap();
    assert!(tensors.iter().all(|(k, _)| k.starts_with("params_ema.")));
    let dropped = "params_ema.body.1.rdb2.conv3.bias";
    let named: Vec<(String, Tensor)> = tensors.iter().filter(|(k, _)| k != dropped).map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
    let path = tmp.path().join("missing.safetensors");
    Tensor::write_safetensors(&named, &path).unwrap();
    let err = Upscaler::load(&path, Device::Cpu).unwrap_err();
    assert!(matches!(err, SrError::Weights(CheckpointError::Mismatch { .. })), "{err}");
    assert!(err.to_string().contains("missing key `body.1.rdb2.conv3.bias`"), "{err}");

    // Other wrappers load to the same network: `params.` with DataParallel's `module.`.
    let named: Vec<(String, Tensor)> =
        tensors.iter().map(|(k, t)| (k.replace("params_ema.", "params.module."), t.shallow_clone())).collect();
    let path = tmp.path().join("params.safetensors");
    Tensor::write_safetensors(&named, &path).unwrap();
    let x = read_npy(&dir().join("x2-input_padded.npy"));
    assert_eq!(
        max_abs_diff(&Upscaler::load(&path, Device::Cpu).unwrap().forward_raw(&x).unwrap(), &load("x2.pth").forward_raw(&x).unwrap()),
        0.0
    );

    // Inputs the network cannot take are errors, not panics.
    let up = load("x2.pth");
    let err = up.forward_raw(&Tensor::zeros([1, 3, 47, 61], (Kind::Float, Device::Cpu))).unwrap_err();
    assert!(matches!(err, SrError::Input(_)) && err.to_string().contains("multiples of 2"), "{err}");
    assert!(matches!(up.forward_raw(&Tensor::zeros([1, 4, 48, 62], (Kind::Float, Device::Cpu))), Err(SrError::Input(_))));
    assert!(Upscaler::with_config(RrdbConfig { scale: 3, ..RrdbConfig::esrnet(2) }, Device::Cpu).is_err());
}

#[test]
fn allocation_failures_are_out_of_memory() {
    // A zero-stride input of 3 x 2^23 x 2^23 pixels costs nothing; the unshuffle's copy asks for
    // 3 x 2^48 bytes, more than any address space, so libtorch refuses at once on every machine.
    let up = load("x2.pth");
    let side = 1i64 << 23;
    let x = Tensor::zeros([1, 3, 1, 1], (Kind::Float, Device::Cpu)).expand([1, 3, side, side], false);
    let err = up.forward_raw(&x).unwrap_err();
    assert!(err.is_oom(), "{err}");
    assert!(matches!(err, SrError::Run(gpen_studio::error::RunError::OutOfMemory(_))), "{err}");
}

#[test]
fn bytes_per_input_pixel_follows_the_upsampled_tail() {
    // (3 u^2 + 64 F) / u^2 floats: the conv at 16x the body's pixels dominates.
    assert_eq!(bytes_per_input_pixel(&RrdbConfig::esrnet(2)), 2060);
    assert_eq!(bytes_per_input_pixel(&RrdbConfig::esrnet(4)), 8204);
    assert_eq!(bytes_per_input_pixel(&RrdbConfig::esrnet(1)), 524);
    assert_eq!(bytes_per_input_pixel(&RrdbConfig::ESRGAN_X4PLUS), 16396);
    // At least the upsampled feature map and the conv's output at scale^2 x the pixels.
    let c = RrdbConfig::esrnet(2);
    assert!(bytes_per_input_pixel(&c) >= 2 * 4 * c.num_feat as u64 * 4);
}

fn test_image(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8 * 3, (x * y) as u8]))
}

/// Peak RSS growth of one forward call per input pixel against [`bytes_per_input_pixel`]. glibc's
/// mmap threshold is fixed at 128 KiB and the heap trimmed before each run, so freed maps go back
/// to the system at once and the growth is the live maps, not memory an earlier run left behind.
#[test]
#[ignore = "measures this process's RSS; run alone with --ignored --test-threads 1"]
fn measure_rss_growth() {
    use gpen_studio::sys::memory::{process_rss, reset_peak_rss};
    // SAFETY: mallopt only changes the allocator's policy for later allocations.
    assert_eq!(unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) }, 1);
    let mut ratios = Vec::new();
    for (scale, side) in [(2, 192u32), (2, 288), (4, 96), (4, 144), (1, 384)] {
        let config = RrdbConfig::esrnet(scale);
        let up = Upscaler::with_config(config, Device::Cpu).unwrap();
        let x = padded_input(&test_image(side, side), config.scale).unwrap();
        // libtorch's one-time allocations (threads, kernels) are not per-pixel costs.
        let _ = up.forward_raw(&padded_input(&test_image(16, 16), config.scale).unwrap()).unwrap();
        // SAFETY: malloc_trim only releases free heap pages.
        unsafe { libc::malloc_trim(0) };
        let before = process_rss().unwrap().0;
        assert!(reset_peak_rss(), "the kernel does not allow resetting the peak RSS");
        let y = up.forward_raw(&x).unwrap();
        let growth = process_rss().unwrap().1.saturating_sub(before);
        drop(y);
        let estimate = bytes_per_input_pixel(&config) * (side * side) as u64;
        println!(
            "x{scale} {side}x{side}: growth {growth} B ({:.0} B/px), estimate {estimate} B ({} B/px), estimate/measured {:.2}",
            growth as f64 / (side * side) as f64,
            bytes_per_input_pixel(&config),
            estimate as f64 / growth as f64
        );
        ratios.push(estimate as f64 / growth as f64);
    }
    // An upper bound, and not a loose one (measured: 1.09-1.13 on the CPU).
    assert!(ratios.iter().all(|r| (1.0..1.3).contains(r)), "estimate / measured = {ratios:?}");
}
