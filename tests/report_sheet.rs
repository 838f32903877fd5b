//! The review sheet (`report sheet`) opened in a real browser engine: headless Chromium (Debian's,
//! installed by `make test`'s set-up) loads the page, its script counts the thumbnails it could
//! decode, and the faces are in the promised order — softened first, then from the least alike up.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Restores `photo` with the golden generator and identity network at `floor`, writing `report`.
fn restore(photo: &Path, out: &Path, report: &Path, floor: &str) {
    restore_with_golden(
        photo,
        out,
        &[
            "--identity-weights",
            golden().join("arcface/weights.pth").to_str().unwrap(),
            "--identity-floor",
            floor,
            "--report",
            report.to_str().unwrap(),
        ],
    );
}

fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.is_file(),
        "Chromium is not installed at {}: `make test` installs it (packaging/install-system-deps.sh --test)",
        path.display()
    );
    path
}

/// The page as Chromium has it after loading (its script has run).
fn rendered_dom(page: &Path, profile: &Path) -> String {
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--virtual-time-budget=10000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `name="..."` in the first tag of `dom` that has it.
fn attribute<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in the page")) + name.len() + 2;
    &dom[start..start + dom[start..].find('"').unwrap()]
}

#[test]
fn the_sheet_renders_in_chromium_with_the_softened_faces_first_then_the_least_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = repo_root().join("../shared/photos");
    let (r1, r2) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
    // A floor only the original meets softens the astronaut; -1 only measures Solvay's 29 faces.
    restore(&photos.join("astronaut.png"), &tmp.path().join("out-a"), &r1, "1");
    restore(&photos.join("solvay_1927.png"), &tmp.path().join("out-b"), &r2, "-1");
    let sheet = tmp.path().join("sheet");
    let run = Command::new(bin()).args(["report", "sheet"]).arg(&r1).arg(&r2).arg("-o").arg(&sheet).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let said = String::from_utf8_lossy(&run.stdout);
    let n: usize = said.split_whitespace().next().unwrap().parse().unwrap();
    assert!(n >= 20, "{said}");

    let dom = rendered_dom(&sheet.join("index.html"), &tmp.path().join("profile"));
    // Every thumbnail decoded by the browser: a before and an after for each face.
    assert_eq!(attribute(&dom, "data-broken"), "0", "broken thumbnails");
    assert_eq!(attribute(&dom, "data-shown"), (2 * n).to_string());
    // The faces in page order: the softened astronaut first, then ascending similarity.
    let faces: Vec<(&str, f64)> = dom
        .match_indices("class=\"face ")
        .map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>').unwrap()];
            (attribute(tag, "data-rank"), attribute(tag, "data-similarity").parse().unwrap())
        })
        .collect();
    assert_eq!(faces.len(), n);
    assert_eq!(faces[0].0, "softened");
    assert!(dom[dom.find("id=\"face-0\"").unwrap()..].contains("astronaut.png"), "the astronaut's face is the first");
    assert!(faces[1..].iter().all(|f| f.0 == "measured"), "{faces:?}");
    assert!(faces[1..].windows(2).all(|w| w[0].1 <= w[1].1), "least alike first: {faces:?}");
}

#[test]
fn a_thumbnail_gone_missing_is_named_on_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("r.json");
    restore(&repo_root().join("../shared/photos/astronaut.png"), &tmp.path().join("out"), &report, "-1");
    let sheet = tmp.path().join("sheet");
    let run = Command::new(bin()).args(["report", "sheet"]).arg(&report).arg("-o").arg(&sheet).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    std::fs::remove_file(sheet.join("faces/00000_after.jpg")).unwrap();
    let dom = rendered_dom(&sheet.join("index.html"), &tmp.path().join("profile"));
    assert_eq!((attribute(&dom, "data-shown"), attribute(&dom, "data-broken")), ("1", "1"));
    assert!(dom.contains("1 thumbnails could not be shown"), "{dom}");
}
