//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod caps;
pub mod corpus;
pub mod fakes;
pub mod server;
pub mod sim_gpu;

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The read-only reference outputs beside the repository (`../shared/golden`).
pub fn golden() -> PathBuf {
    let dir = repo_root().join("../shared/golden");
    assert!(dir.is_dir(), "golden fixtures missing at {}", dir.display());
    dir
}

pub fn golden_weights() -> PathBuf {
    golden().join("gpen-64/weights.pth")
}

/// Runs a Python script with the project's own PyTorch (installed by `make setup` into
/// `.libtorch/site`) to write checkpoint files exactly as `torch.save` writes them.
pub fn run_torch_python(script: &str, args: &[&Path]) {
    let site = repo_root().join(".libtorch/site");
    assert!(site.join("torch").is_dir(), "PyTorch not installed at {}; run `make setup`", site.display());
    let out = Command::new("python3").arg("-c").arg(script).args(args).env("PYTHONPATH", &site).output().expect("python3 runs");
    assert!(out.status.success(), "python failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Reads a float32 .npy into a flat vector with its shape.
pub fn read_npy(path: &Path) -> tch::Tensor {
    tch::Tensor::read_npy(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn max_abs_diff(a: &tch::Tensor, b: &tch::Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Parses a golden key table (`key<TAB>shape`, `x`-separated; an empty shape is a scalar, such as
/// BatchNorm's `num_batches_tracked`): key -> shape.
pub fn read_key_table(path: &Path) -> std::collections::BTreeMap<String, Vec<i64>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, s) = l.split_once('\t').unwrap_or((l, ""));
            let shape = if s.trim().is_empty() { vec![] } else { s.trim().split('x').map(|d| d.parse().unwrap()).collect() };
            (k.to_string(), shape)
        })
        .collect()
}

/// A photo as RGB, naming the file when it cannot be read.
pub fn rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

/// `gpen-studio ARGS` with `data` as its data folder, so nothing installed on this machine (models,
/// add-ons) changes the run.
pub fn run_with_data(data: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(bin()).args(args).env("XDG_DATA_HOME", data).output().unwrap()
}

/// `restore INPUT -o OUT EXTRA...` on the CPU with the golden generator, MTCNN and the feathered
/// rectangle (no add-ons), its data folder inside `out` (nothing installed here changes the run);
/// panics with its messages when it fails.
pub fn restore_with_golden(input: &Path, out: &Path, extra: &[&str]) {
    let run = Command::new(bin())
        .args(["restore", "--device", "cpu", "--detector", "mtcnn", "--mask", "rectangle", "--weights"])
        .arg(golden_weights())
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(extra)
        .env("XDG_DATA_HOME", out.join(".no-data"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

/// An argument of [`run_with_data`]: strings and paths alike.
pub fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Starts `command` with its stderr piped, reads stderr until a line satisfies `ready`, sends the
/// child SIGINT (Ctrl-C), and returns its exit status with everything it wrote to stderr.
pub fn interrupt_when(command: &mut Command, ready: impl Fn(&str) -> bool) -> (std::process::ExitStatus, String) {
    use std::io::{BufRead, Read};
    let mut child = command.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.lines().any(&ready) {
        assert!(stderr.read_line(&mut seen).unwrap() > 0, "the awaited line never came:\n{seen}");
    }
    // SAFETY: sends SIGINT to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    stderr.read_to_string(&mut seen).unwrap();
    (child.wait().unwrap(), seen)
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gpen-studio"))
}

/// Both folders hold the same `count` files, byte for byte (`what` names the two runs).
pub fn assert_same_files(a: &Path, b: &Path, count: usize, what: &str) {
    let (a, b) = (snapshot(a), snapshot(b));
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "different files between {what}");
    assert_eq!(a.len(), count, "{:?}", names(&a));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between {what}");
    }
}

/// Every file in `dir` (not recursive) with its bytes, sorted by name.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}
