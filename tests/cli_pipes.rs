//! The command line in pipes and scripts: a reader that goes away (`| head -1`) ends the program
//! quietly by SIGPIPE (status 141 in a shell), never with a panic, on stdout and on stderr; and
//! `info --json` names the libtorch actually loaded, as the library reports itself.

mod common;
use common::{bin, golden_weights, interrupt_when, repo_root};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

fn photo() -> std::path::PathBuf {
    repo_root().join("../shared/photos/astronaut.png")
}

/// `gpen-studio ARGS | head -1`: reads the first line of stdout, closes the pipe, and returns that
/// line, the exit status and stderr.
fn head_1(data: &std::path::Path, args: &[&std::ffi::OsStr]) -> (String, std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    let child = {
        let mut cmd = Command::new(bin());
        cmd.args(args).env("XDG_DATA_HOME", data).stdout(writer).stderr(Stdio::piped());
        cmd.spawn().unwrap()
        // `cmd` (and our copy of the pipe's write end) is dropped here: only the child writes.
    };
    let mut first = String::new();
    BufReader::new(reader).read_line(&mut first).unwrap();
    // The reader is gone now, while the child still has lines to print.
    let out = child.wait_with_output().unwrap();
    (first, out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_ended_by_sigpipe(status: std::process::ExitStatus, stderr: &str, what: &str) {
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{what}: {stderr}");
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{what}: ended by SIGPIPE (141 in a shell), got {status:?}\n{stderr}");
}

#[test]
fn detect_into_a_closed_pipe_ends_quietly() {
    let data = tempfile::tempdir().unwrap();
    // Each photo prints a header and a face line, with a detection between photos: once the first
    // line is read and the pipe closed, eleven detections are still to come, so the next write
    // meets the closed pipe at any machine's speed.
    let p = photo();
    let args = ["detect", "--device", "cpu", "--detector", "mtcnn"].map(std::ffi::OsStr::new);
    let mut all: Vec<&std::ffi::OsStr> = args.to_vec();
    all.extend(std::iter::repeat_n(p.as_os_str(), 12));
    let (first, status, stderr) = head_1(data.path(), &all);
    assert!(first.contains("astronaut.png: 512x512, 1 face"), "{first}");
    assert_ended_by_sigpipe(status, &stderr, "detect | head -1");
}

#[test]
fn bench_into_a_closed_pipe_ends_quietly_and_names_the_loaded_libtorch() {
    let data = tempfile::tempdir().unwrap();
    let w = golden_weights();
    let args: Vec<&std::ffi::OsStr> =
        ["bench", "generator", "--device", "cpu", "--batch", "1,2,4,1,2,4,1,2,4", "--repeat", "3", "--weights"]
            .map(std::ffi::OsStr::new)
            .into_iter()
            .chain([w.as_os_str()])
            .collect();
    let (first, status, stderr) = head_1(data.path(), &args);
    assert!(first.starts_with("bench generator: GPEN 64"), "{first}");
    let version = gpen_studio::sys::runtime_versions::libtorch_version();
    assert_ne!(version, "unknown");
    assert!(first.trim_end().ends_with(&format!("libtorch {version}")), "{first}");
    assert_ended_by_sigpipe(status, &stderr, "bench generator | head -1");
}

#[test]
fn a_closed_stderr_ends_quietly_too() {
    let data = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // `2>&1 | true`: nobody reads the error
    let missing = data.path().join("missing.png");
    let status = Command::new(bin())
        .args(["detect", "--device", "cpu", "--detector", "mtcnn"])
        .arg(&missing)
        .env("XDG_DATA_HOME", data.path())
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .unwrap();
    // A panic would end with status 101 (its message lost on the closed stderr).
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
}

#[test]
fn info_json_names_the_loaded_libtorch_as_the_library_reports_it() {
    let data = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["info", "--json"])
        .env("XDG_DATA_HOME", data.path())
        .env("XDG_CONFIG_HOME", config.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("info --json is JSON");
    let lib = &info["versions"]["libtorch"];
    let version = lib["version"].as_str().unwrap();
    // The library the process mapped, and the version file its wheel keeps beside it (read here,
    // independently of gpen-studio): the same release.
    let library = std::path::PathBuf::from(lib["library"].as_str().expect("the loaded library's path"));
    assert!(library.is_file() && library.file_name().unwrap().to_string_lossy().starts_with("libtorch_cpu"), "{library:?}");
    let version_py = std::fs::read_to_string(library.parent().unwrap().parent().unwrap().join("version.py")).unwrap();
    let wheel = version_py.lines().find_map(|l| l.strip_prefix("__version__ = ")).unwrap().trim_matches(|c| c == '\'' || c == '"');
    assert_eq!(wheel.split('+').next(), Some(version), "{wheel}");
    assert_eq!(lib["package_version"].as_str(), Some(wheel));
    assert_eq!(info["gpen_studio"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    // Devices (the CPU always, with its memory), the folders of this environment, no models.
    assert_eq!(info["devices"][0]["device"], "cpu");
    assert!(info["devices"][0]["total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(info["folders"]["data"].as_str().map(std::path::PathBuf::from), Some(data.path().join("gpen-studio")));
    assert_eq!(info["models"]["folder"].as_str().map(std::path::PathBuf::from), Some(data.path().join("gpen-studio/models")));
    assert_eq!(info["models"]["installed"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        info["calibrations"]["file"].as_str().map(std::path::PathBuf::from),
        Some(config.path().join("gpen-studio/calibrations.json"))
    );
    assert!(info["mtcnn"]["found"].as_bool().unwrap(), "{}", info["mtcnn"]);
    // Without a GPU the CUDA device count is 0 and the driver says why; with one, both are there.
    let devices = info["versions"]["cuda"]["devices"].as_u64().unwrap();
    let driver = &info["versions"]["nvidia_driver"];
    assert!(driver["version"].is_string() || driver["error"].is_string(), "{driver}");
    assert_eq!(info["devices"].as_array().unwrap().len() as u64, devices + 1);
    // The text form says the same version.
    let text = Command::new(bin()).arg("info").env("XDG_DATA_HOME", data.path()).env("XDG_CONFIG_HOME", config.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).lines().any(|l| l.starts_with(&format!("libtorch {version} "))));
}

#[test]
fn exit_statuses_are_the_ones_help_documents() {
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("out");
    let status = |args: &[&std::ffi::OsStr]| Command::new(bin()).args(args).env("XDG_DATA_HOME", data.path()).output().unwrap();
    let help = status(&[std::ffi::OsStr::new("--help")]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for code in ["0", "1", "2", "130", "141"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(&format!("{code} "))), "--help lacks status {code}:\n{help}");
    }
    // Bad usage, found by clap or after parsing (a value the run configuration refuses): 2.
    let p = photo();
    let unknown = status(&[std::ffi::OsStr::new("restore"), std::ffi::OsStr::new("--no-such-flag")]);
    assert_eq!(unknown.status.code(), Some(2));
    let bad_value = status(
        &["restore", "--upscale", "3", "-o"]
            .map(std::ffi::OsStr::new)
            .into_iter()
            .chain([out.as_os_str(), p.as_os_str()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(bad_value.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad_value.stderr));
    assert!(String::from_utf8_lossy(&bad_value.stderr).contains("upscale must be one of 1, 2, 4"));
    // A photo that fails: 1.
    let broken = data.path().join("broken.jpg");
    std::fs::write(&broken, b"not a jpeg").unwrap();
    let failed = status(
        &["detect", "--device", "cpu", "--detector", "mtcnn"]
            .map(std::ffi::OsStr::new)
            .into_iter()
            .chain([broken.as_os_str()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(failed.status.code(), Some(1));
}

#[test]
fn ctrl_c_cancels_a_restore_with_status_130() {
    let data = tempfile::tempdir().unwrap();
    let photos = data.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for i in 0..8 {
        std::fs::copy(repo_root().join("../shared/photos/solvay_1927.png"), photos.join(format!("solvay{i}.png"))).unwrap();
    }
    let mut restore = Command::new(bin());
    restore
        .args(["restore", "--device", "cpu", "--detector", "mtcnn", "--workers", "1", "--weights"])
        .arg(golden_weights())
        .arg(&photos)
        .arg("-o")
        .arg(data.path().join("out"))
        .env("XDG_DATA_HOME", data.path());
    // In a pipe, progress is a plain line: the first one comes with the first photo done.
    let (status, all) = interrupt_when(&mut restore, |l| l.starts_with("progress: "));
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(all.contains("cancelling after the current batch") && all.contains("cancelled "), "{all}");
    assert!(!all.contains('\r'), "no bar in a pipe");
}
