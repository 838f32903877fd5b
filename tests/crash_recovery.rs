//! A killed run resumes: `kill -9` the CLI mid-run, run it again, and it skips finished photos,
//! leaves no partial files, and ends with outputs identical to an uninterrupted run.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn restore_cmd(input: &Path, out: &Path) -> Command {
    let mut c = Command::new(bin());
    c.args(["restore", "--device", "cpu", "--weights"]).arg(golden_weights()).arg(input).arg("-o").arg(out);
    c
}

#[test]
fn a_killed_run_resumes_and_ends_identical_to_an_uninterrupted_one() {
    let input = tempfile::tempdir().unwrap();
    let photos = repo_root().join("../shared/photos");
    for i in 0..8 {
        let src = if i % 2 == 0 { "solvay_1927.png" } else { "astronaut.png" };
        std::fs::copy(photos.join(src), input.path().join(format!("photo{i}.png"))).unwrap();
    }
    let before = snapshot(input.path());

    let reference = tempfile::tempdir().unwrap();
    let run = restore_cmd(input.path(), reference.path()).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(snapshot(reference.path()).len(), 8);

    // Kill -9 on the event that proves the run is under way with work left: in a pipe, the first
    // plain progress line comes when the first of the 8 photos is written (a line per photo for 8),
    // so 7 photos, seconds of work at any machine's speed, are still to do.
    let out = tempfile::tempdir().unwrap();
    let mut child = restore_cmd(input.path(), out.path()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.lines().any(|l| l.starts_with("progress: ")) {
        assert!(stderr.read_line(&mut seen).unwrap() > 0, "the run ended without a progress line:\n{seen}");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let finished: Vec<String> = snapshot(out.path()).into_iter().map(|(n, _)| n).filter(|n| !n.starts_with('.')).collect();
    assert!(!finished.is_empty() && finished.len() < 8, "killed mid-run: {finished:?}");

    let rerun = restore_cmd(input.path(), out.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("already done {}", finished.len())), "{stderr}");
    assert_eq!(snapshot(out.path()), snapshot(reference.path()), "same results, no partial files left");
    assert_eq!(snapshot(input.path()), before, "inputs untouched");
}
