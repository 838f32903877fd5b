//! The GPEN generator matches the authors' implementation (golden/gpen-64: official code, seeded
//! random weights with every bias and noise weight non-zero). Pass: max |diff| <= 1e-4 in fp32 on
//! the CPU, for the batch of 3 and for each sample alone.

mod common;
use common::*;
use gpen_studio::device::Precision;
use gpen_studio::restore::gpen::Gpen;
use gpen_studio::restore::network::GpenConfig;
use tch::Device;

const TOLERANCE: f64 = 1e-4;

fn load() -> Gpen {
    Gpen::load(&golden_weights(), Device::Cpu, Precision::Fp32).expect("golden weights load")
}

#[test]
fn configuration_is_inferred_from_the_golden_weights() {
    let gpen = load();
    assert_eq!(gpen.config(), GpenConfig { size: 64, style_dim: 512, n_mlp: 8, channel_multiplier: 1, narrow: 0.125 });
}

#[test]
fn batch_of_three_matches_the_reference() {
    let gpen = load();
    let x = read_npy(&golden().join("gpen-64/input.npy"));
    let want = read_npy(&golden().join("gpen-64/output.npy"));
    let got = gpen.forward(&x).unwrap();
    let diff = max_abs_diff(&got, &want);
    eprintln!("batch of 3: max |diff| {diff:.2e} from the authors' output");
    assert!(diff <= TOLERANCE, "max |diff| {diff}");
}

#[test]
fn each_sample_alone_matches_the_reference() {
    let gpen = load();
    let x = read_npy(&golden().join("gpen-64/input.npy"));
    let want = read_npy(&golden().join("gpen-64/output.npy"));
    for i in 0..3 {
        let got = gpen.forward(&x.narrow(0, i, 1)).unwrap();
        let diff = max_abs_diff(&got, &want.narrow(0, i, 1));
        assert!(diff <= TOLERANCE, "sample {i}: max |diff| {diff}");
    }
}

#[test]
fn generator_command_writes_the_reference_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.npy");
    let status = std::process::Command::new(bin())
        .args(["generator", "--device", "cpu", "--weights"])
        .arg(golden_weights())
        .arg("--input")
        .arg(golden().join("gpen-64/input.npy"))
        .arg("--output")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let diff = max_abs_diff(&read_npy(&out), &read_npy(&golden().join("gpen-64/output.npy")));
    assert!(diff <= TOLERANCE, "max |diff| {diff}");
}

#[test]
fn wrong_input_shape_is_an_error_not_a_panic() {
    let gpen = load();
    let x = tch::Tensor::zeros([1, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    let err = gpen.forward(&x).unwrap_err();
    assert!(err.to_string().contains("expects input [B, 3, 64, 64]"), "{err}");
    assert!(!err.is_oom());
}

#[test]
fn bf16_convolutions_stay_close_to_the_reference() {
    // The reduced-precision path: convolutions in bf16 (8 bits of mantissa), the mapping network,
    // the encoder's final linear layer and the (de)modulation sums in fp32.
    let gpen = Gpen::load(&golden_weights(), Device::Cpu, Precision::Bf16).unwrap();
    let x = read_npy(&golden().join("gpen-64/input.npy"));
    let want = read_npy(&golden().join("gpen-64/output.npy"));
    let got = gpen.forward(&x).unwrap();
    assert_eq!(got.kind(), tch::Kind::Float, "results come back as fp32");
    let diff = max_abs_diff(&got, &want);
    let mean = (&got - &want).abs().mean(tch::Kind::Float).double_value(&[]);
    eprintln!("bf16: max |diff| {diff:.4}, mean {mean:.5}");
    assert!(diff > 1e-4, "bf16 really ran (an fp32 result would match to 1e-5)");
    assert!(diff < 0.1 && mean < 0.01, "max {diff}, mean {mean}");
}
