//! Checkpoint loading: every container GPEN weights come in loads to the same network, and every
//! broken or wrong file gives a clear error naming the problem — never a panic.

mod common;
use common::*;
use gpen_studio::checkpoint::{CheckpointError, KeyProblem};
use gpen_studio::restore::checkpoint::{LoadedGenerator, load_generator};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::Device;

/// Files written once by the real `torch.save` from the golden weights.
struct Fixtures {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();

const MAKE_FIXTURES: &str = r#"
import sys, collections, torch
src, out = sys.argv[1], sys.argv[2]
sd = torch.load(src, map_location="cpu")
def save(name, obj, **kw): torch.save(obj, f"{out}/{name}", **kw)
save("legacy.pth", sd, _use_new_zipfile_serialization=False)
save("training.pt", {"g": sd, "d": {"x": torch.zeros(2)}, "g_ema": sd, "g_optim": {"state": {}, "param_groups": []}})
save("dataparallel.pth", collections.OrderedDict(("module." + k, v) for k, v in sd.items()))
save("half.pth", collections.OrderedDict((k, v.half()) for k, v in sd.items()))
save("no_kernels.pth", collections.OrderedDict((k, v) for k, v in sd.items() if not k.endswith(".kernel")))
missing = collections.OrderedDict(sd); del missing["generator.convs.3.conv.modulation.bias"]
save("missing_key.pth", missing)
reshaped = collections.OrderedDict(sd); reshaped["generator.to_rgbs.1.conv.weight"] = torch.zeros(1, 3, 32, 1, 1)
save("wrong_shape.pth", reshaped)
extra = collections.OrderedDict(sd); extra["generator.noises.noise_0"] = torch.zeros(1, 1, 4, 4)
save("extra_key.pth", extra)
disc = collections.OrderedDict([
    ("convs.0.0.weight", torch.zeros(8, 3, 1, 1)), ("convs.0.1.bias", torch.zeros(8)),
    ("final_conv.0.weight", torch.zeros(8, 9, 3, 3)), ("final_conv.1.bias", torch.zeros(8)),
    ("final_linear.0.weight", torch.zeros(8, 128)), ("final_linear.0.bias", torch.zeros(8)),
    ("final_linear.1.weight", torch.zeros(1, 8)), ("final_linear.1.bias", torch.zeros(1))])
save("GPEN-BFR-64-D.pth", disc)
save("not_a_model.pth", {"epoch": 3, "lr": 0.1})
"#;

fn fixtures() -> &'static Path {
    &FIXTURES
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_path_buf();
            run_torch_python(MAKE_FIXTURES, &[&golden_weights(), &root]);
            // Files a failed download or a wrong click produce.
            let bytes = std::fs::read(golden_weights()).unwrap();
            std::fs::write(root.join("truncated.pth"), &bytes[..bytes.len() / 2]).unwrap();
            std::fs::write(root.join("empty.pth"), b"").unwrap();
            let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
            std::fs::write(root.join("random.pth"), noise).unwrap();
            std::fs::write(root.join("page.pth"), b"<!DOCTYPE html><html><body>Not Found</body></html>").unwrap();
            Fixtures { _dir: dir, root }
        })
        .root
}

fn load(name: &str) -> Result<LoadedGenerator, CheckpointError> {
    load_generator(&fixtures().join(name), Device::Cpu)
}

/// The network restored from `name` gives the golden output.
fn assert_golden_output(name: &str) {
    let loaded = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = read_npy(&golden().join("gpen-64/input.npy"));
    let y = tch::no_grad(|| loaded.net.forward(&x)).unwrap();
    let diff = max_abs_diff(&y, &read_npy(&golden().join("gpen-64/output.npy")));
    let tolerance = if name.starts_with("half") { 0.05 } else { 1e-4 };
    assert!(diff <= tolerance, "{name}: max |diff| {diff}");
}

#[test]
fn zip_and_legacy_pickles_load() {
    assert_golden_output("legacy.pth");
    assert_golden_output("half.pth");
}

#[test]
fn wrappers_and_prefixes_are_unwrapped() {
    assert_golden_output("training.pt");
    assert_golden_output("dataparallel.pth");
}

#[test]
fn constant_blur_kernels_may_be_left_out() {
    assert_golden_output("no_kernels.pth");
}

#[test]
fn safetensors_load() {
    let tensors = gpen_studio::checkpoint::read_tensors(&golden_weights()).unwrap();
    let path = fixtures().join("weights.safetensors");
    tch::Tensor::write_safetensors(&tensors, &path).unwrap();
    assert_golden_output("weights.safetensors");
}

#[test]
fn a_missing_key_is_named_with_its_shape() {
    let err = load("missing_key.pth").unwrap_err();
    let CheckpointError::Mismatch { problems, .. } = &err else { panic!("{err}") };
    assert_eq!(problems, &[KeyProblem::Missing { key: "generator.convs.3.conv.modulation.bias".into(), expected: vec![128] }]);
    assert!(err.to_string().contains("missing key `generator.convs.3.conv.modulation.bias` (expected shape [128])"), "{err}");
}

#[test]
fn a_wrong_shape_names_the_key_and_both_shapes() {
    let err = load("wrong_shape.pth").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`generator.to_rgbs.1.conv.weight` has shape [1, 3, 32, 1, 1] in the file, the network needs [1, 3, 128, 1, 1]"),
        "{text}"
    );
}

#[test]
fn an_unexpected_key_is_named() {
    let err = load("extra_key.pth").unwrap_err();
    assert!(err.to_string().contains("unexpected key `generator.noises.noise_0` with shape [1, 1, 4, 4]"), "{err}");
}

#[test]
fn a_discriminator_is_recognised() {
    let err = load("GPEN-BFR-64-D.pth").unwrap_err();
    assert!(matches!(err, CheckpointError::Discriminator { .. }), "{err}");
    assert!(err.to_string().contains("discriminator"));
}

#[test]
fn damaged_and_foreign_files_give_clear_errors() {
    for (name, expect) in [
        ("truncated.pth", "truncated or damaged"),
        ("empty.pth", "empty"),
        ("random.pth", "not a PyTorch checkpoint"),
        ("page.pth", "not a PyTorch checkpoint"),
        ("not_a_model.pth", "holds no tensors"),
    ] {
        let err = load(name).unwrap_err();
        assert!(err.to_string().contains(expect), "{name}: {err}");
    }
    let err = load_generator(Path::new("/nonexistent/GPEN-BFR-512.pth"), Device::Cpu).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err}");
}
