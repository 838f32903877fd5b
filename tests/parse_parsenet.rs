//! The face parser and the paste-mask steps match GPEN's official code (golden/parsenet: the
//! official `ParseNet` at 256 with seeded random weights, `FaceParse.process`, `mask_postprocess`),
//! and the 8-bit resize matches `cv2.resize` (golden/pipeline upscaled inputs).

mod common;
use common::*;
use gpen_studio::imgproc::{resize_linear_f32, resize_linear_rgb};
use gpen_studio::mask::parser::{
    FaceParser, MASK_BORDER, ParseError, ParseNet, ParseNetConfig, bytes_per_face, mask_postprocess, mask_to_unit,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

fn dir() -> PathBuf {
    golden().join("parsenet")
}

/// The golden's small parser: `ParseNet(256, 256, 16, 16, 19, ..., ch_range=[8, 64])`, run at 256.
const GOLDEN_256: ParseNetConfig =
    ParseNetConfig { base_ch: 16, min_ch: 8, max_ch: 64, down_steps: 4, up_steps: 4, res_depth: 10, parsing_ch: 19 };
const GOLDEN_SIZE: u32 = 256;

fn load() -> FaceParser {
    FaceParser::load(&dir().join("weights.pth"), Some(GOLDEN_SIZE), Device::Cpu).expect("golden parser loads")
}

fn gray(path: &Path) -> image::GrayImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_luma8()
}

fn npy_vec(path: &Path) -> (Vec<i64>, Vec<f32>) {
    let t = read_npy(path).to_kind(Kind::Float).contiguous();
    (t.size(), Vec::<f32>::try_from(&t.view([-1])).unwrap())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn equal_fraction(a: &image::GrayImage, b: &image::GrayImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw().iter().zip(b.as_raw()).filter(|(x, y)| x == y).count() as f64 / a.as_raw().len() as f64
}

#[test]
fn the_configuration_is_inferred_and_the_size_is_the_one_given() {
    let parser = load();
    assert_eq!(parser.size(), GOLDEN_SIZE);
    assert_eq!(parser.config().effective(), GOLDEN_256.effective());
    assert_eq!(parser.config().channels().1, 64);
    // The size is not in the weights: without one, only the released configuration loads (at
    // 512), and the error names the option that gives it.
    let err = FaceParser::load(&dir().join("weights.pth"), None, Device::Cpu).unwrap_err();
    assert!(matches!(err, ParseError::UnknownSize { .. }), "{err}");
    assert!(err.to_string().contains("--parser-size"), "{err}");
}

#[test]
fn network_outputs_match_the_reference() {
    let parser = load();
    let x = read_npy(&dir().join("input.npy"));
    let (logits, out_img) = parser.forward(&x).unwrap();
    let d_logits = max_abs_diff(&logits, &read_npy(&dir().join("logits.npy")));
    let d_img = max_abs_diff(&out_img, &read_npy(&dir().join("out_img.npy")));
    println!("logits max |diff| {d_logits:.3e}, out_img max |diff| {d_img:.3e}");
    assert!(d_logits <= 1e-4, "logits max |diff| {d_logits}");
    assert!(d_img <= 1e-4, "out_img max |diff| {d_img}");
}

/// The inference form (norms folded into the convolutions, each up block's upsample + conv1 +
/// shortcut as one sub-pixel convolution) computes the checkpoint's network: within 1e-4 of the
/// unfolded layers on the golden input, batched or not, and the same labels but where the top two
/// logits are closer than the difference.
#[test]
fn folded_network_matches_the_unfolded_one() {
    let folded = load();
    let unfolded = FaceParser::load_unfolded(&dir().join("weights.pth"), Some(GOLDEN_SIZE), Device::Cpu).unwrap();
    let x = read_npy(&dir().join("input.npy"));
    // A batch of two different faces: the golden input and it mirrored.
    let x2 = Tensor::cat(&[&x, &x.flip([3])], 0);
    let (fl, fi) = folded.forward(&x2).unwrap();
    let (ul, ui) = unfolded.forward(&x2).unwrap();
    let (d_logits, d_img) = (max_abs_diff(&fl, &ul), max_abs_diff(&fi, &ui));
    println!("folded against unfolded: logits max |diff| {d_logits:.3e}, out_img {d_img:.3e}");
    assert!(d_logits <= 1e-4 && d_img <= 1e-4, "logits {d_logits}, out_img {d_img}");
    assert!(d_logits > 0.0, "the folded form is a different computation (else this test checks nothing)");
    let face = rgb(&golden().join("align/solvay_1927_face00_aligned512.png"));
    let (a, b) = (folded.parse_labels(std::slice::from_ref(&face)).unwrap(), unfolded.parse_labels(std::slice::from_ref(&face)).unwrap());
    let same = equal_fraction(&a[0], &b[0]);
    println!("labels equal {:.5} %", 100.0 * same);
    assert!(same >= 0.9999, "labels equal on {same}");
}

#[test]
fn parse_of_the_aligned_face_matches_face_parse_process() {
    let parser = load();
    let face = rgb(&golden().join("align/solvay_1927_face00_aligned512.png"));
    let x = parser.input_tensor(std::slice::from_ref(&face)).unwrap();
    let d_in = max_abs_diff(&x, &read_npy(&dir().join("input.npy")));
    println!("input max |diff| {d_in:.3e}");
    assert!(d_in <= 1e-6, "input max |diff| {d_in}");

    let labels = parser.parse_labels(std::slice::from_ref(&face)).unwrap();
    let f_labels = equal_fraction(&labels[0], &gray(&dir().join("parsing.png")));
    let masks = parser.parse(std::slice::from_ref(&face)).unwrap();
    let golden_mask = gray(&dir().join("mask.png"));
    let f_mask = equal_fraction(&masks[0], &golden_mask);
    println!("labels equal {:.5} %, mask equal {:.5} %", 100.0 * f_labels, 100.0 * f_mask);
    assert!(f_labels >= 0.999, "labels equal on {f_labels}");
    assert!(f_mask >= 0.999, "mask equal on {f_mask}");
    assert!(masks[0].iter().all(|&v| v == 0 || v == 255));

    // End to end: our own mask through mask_postprocess stays within one flipped label's reach.
    let ours = mask_postprocess(&mask_to_unit(&masks[0]), 256, 256, MASK_BORDER);
    let (_, want) = npy_vec(&dir().join("mask_post.npy"));
    let d = max_diff(&ours, &want);
    println!("end-to-end mask_post max |diff| {d:.3e}");
    assert!(d <= 0.02, "end-to-end mask_post max |diff| {d}");

    // A batch of two (the second face resized from another size) gives each face's own result.
    let small = image::imageops::resize(&face, 300, 300, image::imageops::FilterType::Triangle);
    let batch = parser.parse(&[face.clone(), small.clone()]).unwrap();
    assert_eq!(batch[0], masks[0]);
    assert_eq!(batch[1], parser.parse(&[small]).unwrap()[0]);
}

#[test]
fn mask_postprocess_matches_the_reference() {
    for (mask, post, n) in [("mask.png", "mask_post.npy", 256), ("mask512.png", "mask512_post.npy", 512)] {
        let m = gray(&dir().join(mask));
        // Its cost is measured by `gpen-studio bench face-path` (docs/BENCHMARKS.md), not here.
        let got = mask_postprocess(&mask_to_unit(&m), n, n, MASK_BORDER);
        let (shape, want) = npy_vec(&dir().join(post));
        assert_eq!(shape, vec![n as i64, n as i64]);
        let d = max_diff(&got, &want);
        println!("{mask}: max |diff| {d:.3e}");
        assert!(d <= 1e-5, "{mask}: max |diff| {d}");
    }
}

#[test]
fn float_resize_matches_cv2() {
    let (_, src) = npy_vec(&dir().join("mask_post.npy"));
    let (_, want) = npy_vec(&dir().join("mask_post_resized512.npy"));
    let got = resize_linear_f32(&src, 256, 256, 512, 512);
    let d = max_diff(&got, &want);
    println!("resize_linear_f32 max |diff| {d:.3e}");
    assert!(d <= 1e-5, "max |diff| {d}");
}

#[test]
fn u8_resize_matches_cv2_on_the_upscaled_inputs() {
    for name in ["solvay", "astronaut"] {
        let src = rgb(&golden().join(format!("pipeline/{name}-input.png")));
        let want = rgb(&golden().join(format!("pipeline/{name}-sr-upscaled_input.png")));
        let got = resize_linear_rgb(&src, want.width(), want.height());
        let diffs: Vec<u8> = got.as_raw().iter().zip(want.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
        let max = *diffs.iter().max().unwrap();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        let equal = diffs.iter().filter(|&&d| d == 0).count() as f64 / diffs.len() as f64;
        println!(
            "{name}: {}x{} -> {}x{}: max {max}, mean {mean:.5}, equal {:.4} %",
            src.width(),
            src.height(),
            want.width(),
            want.height(),
            100.0 * equal
        );
        assert!(max <= 1 && mean <= 0.01 && equal >= 0.998, "{name}: max {max}, mean {mean}, equal {equal}");
    }
}

#[test]
fn released_configuration_registers_the_official_keys() {
    let want = common::read_key_table(&dir().join("keys-512.tsv"));
    assert_eq!(want.len(), 238);
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = ParseNet::new(&vs.root(), &ParseNetConfig::RELEASED);
    let got: BTreeMap<String, Vec<i64>> = vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect();
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
    for (k, s) in &want {
        assert_eq!(&got[k], s, "{k}");
    }
    let params: i64 =
        got.iter().filter(|(k, _)| k.ends_with(".weight") || k.ends_with(".bias")).map(|(_, s)| s.iter().product::<i64>()).sum();
    assert!((params as f64 / 1e6 - 21.30).abs() < 0.01, "{params} parameters");
}

#[test]
fn released_size_is_inferred_from_the_released_shapes() {
    // A state dict with the released shapes (zeros), written as safetensors, loads as the 512 parser.
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = ParseNet::new(&vs.root(), &ParseNetConfig::RELEASED);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ParseNet-latest.safetensors");
    let named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    Tensor::write_safetensors(&named, &path).unwrap();
    let parser = FaceParser::load(&path, None, Device::Cpu).unwrap();
    assert_eq!(parser.size(), 512);
    assert_eq!(parser.config().effective(), ParseNetConfig::RELEASED.effective());
    assert_eq!(parser.bytes_per_face(), bytes_per_face(512));
}

#[test]
fn wrong_files_are_clear_errors() {
    let err = FaceParser::load(&golden().join("gpen-64/weights.pth"), None, Device::Cpu).unwrap_err();
    assert!(matches!(err, ParseError::NotParseNet { .. }), "{err}");
    assert!(err.to_string().contains("does not hold a ParseNet"), "{err}");

    let err = FaceParser::load(Path::new("/nonexistent/ParseNet-latest.pth"), None, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");

    // A ParseNet with one shape changed: the strict check names the key.
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = ParseNet::new(&vs.root(), &GOLDEN_256);
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    for (k, t) in &mut named {
        if k == "body.3.conv2.conv2d.weight" {
            *t = Tensor::zeros([64, 64, 1, 1], (Kind::Float, Device::Cpu));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.safetensors");
    Tensor::write_safetensors(&named, &path).unwrap();
    let err = FaceParser::load(&path, Some(GOLDEN_SIZE), Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("body.3.conv2.conv2d.weight"), "{err}");

    // An unknown configuration needs its size; with one it loads.
    let vs = nn::VarStore::new(Device::Cpu);
    let other = ParseNetConfig { res_depth: 2, ..GOLDEN_256 };
    let _net = ParseNet::new(&vs.root(), &other);
    let named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let path = tmp.path().join("other.safetensors");
    Tensor::write_safetensors(&named, &path).unwrap();
    let err = FaceParser::load(&path, None, Device::Cpu).unwrap_err();
    assert!(matches!(err, ParseError::UnknownSize { .. }), "{err}");
    let parser = FaceParser::load(&path, Some(64), Device::Cpu).unwrap();
    assert_eq!(parser.config().res_depth, 2);
    assert!(FaceParser::load(&path, Some(40), Device::Cpu).is_err());

    // Wrong input shapes are errors, not panics.
    let parser = load();
    let err = parser.forward(&Tensor::zeros([1, 3, 128, 128], (Kind::Float, Device::Cpu))).unwrap_err();
    assert!(err.to_string().contains("expects input [N, 3, 256, 256]"), "{err}");
}

#[test]
fn bytes_per_face_follows_the_largest_stage() {
    // The peak is the last decoder block at full size, so it grows with the area; at 512 it holds
    // at least the upsampled 128-channel input and its padded copy (2 x 128 MB).
    let (a, b) = (bytes_per_face(256), bytes_per_face(512));
    assert!(b > 39 * a / 10 && b < 41 * a / 10, "{a} {b}");
    assert!(b > 2 * 128 * 512 * 512 * 4, "{b}");
    assert_eq!(b, 126_354_432 * 4);
    assert!(load().bytes_per_face() < a);
}

#[test]
#[ignore = "measures this process's RSS; run alone with --ignored --test-threads 1"]
fn measure_rss_growth() {
    let parser = load();
    let face = rgb(&golden().join("align/solvay_1927_face00_aligned512.png"));
    let measure = |p: &FaceParser, n: usize| -> u64 {
        let faces = vec![face.clone(); n];
        p.parse(&faces[..1]).unwrap();
        let before = gpen_studio::sys::memory::process_rss().unwrap().0;
        assert!(gpen_studio::sys::memory::reset_peak_rss());
        p.parse(&faces).unwrap();
        gpen_studio::sys::memory::process_rss().unwrap().1 - before
    };
    for n in [1, 4] {
        println!("256 batch {n}: growth {} estimate/face {}", measure(&parser, n), parser.bytes_per_face());
    }
    let big = FaceParser::with_config(ParseNetConfig::RELEASED, 512, Device::Cpu).unwrap();
    let growth = measure(&big, 1);
    println!("512 batch 1: growth {growth} estimate/face {}", big.bytes_per_face());
    let ratio = big.bytes_per_face() as f64 / growth as f64;
    assert!((0.8..1.5).contains(&ratio), "estimate / measured = {ratio}");
}
