//! The desktop integration and the package description agree with the code they describe: the
//! .desktop file with the window's app id and the formats we read, the icons with their sizes, and
//! Cargo.toml's cargo-deb assets with the paths the binary looks in once installed. (Building the
//! package and running it installed is packaging/check-deb.sh, which `make test` runs after this.)

mod common;

use common::repo_root;
use gpen_studio::archive::inputs::IMAGE_EXTENSIONS;
use gpen_studio::detect::mtcnn::models_dir_candidates;
use gpen_studio::gui::{APP_ID, window_icon};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn desktop_entry() -> Vec<(String, String)> {
    let path = repo_root().join("packaging").join(format!("{APP_ID}.desktop"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

fn field(entry: &[(String, String)], key: &str) -> String {
    entry.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no {key}= in the .desktop file"))
}

#[test]
fn the_desktop_file_names_the_window_and_every_format_we_read() {
    let entry = desktop_entry();
    // Window managers match the window to its launcher through the app id.
    assert_eq!(field(&entry, "Icon"), APP_ID);
    assert_eq!(field(&entry, "StartupWMClass"), APP_ID);
    let exec = field(&entry, "Exec");
    assert_eq!(exec.split_whitespace().next(), Some(env!("CARGO_PKG_NAME")), "{exec}");
    assert!(exec.ends_with("%F"), "files opened with the app must reach it: {exec}");

    let declared: BTreeSet<String> = field(&entry, "MimeType").split(';').filter(|m| !m.is_empty()).map(str::to_string).collect();
    // The image crate names every type but HEIF's (read through libheif).
    let mime = |ext: &str| match ext {
        "heic" => "image/heic".to_string(),
        "heif" => "image/heif".to_string(),
        _ => image::ImageFormat::from_extension(ext).unwrap_or_else(|| panic!("{ext}")).to_mime_type().to_string(),
    };
    let read: BTreeSet<String> = IMAGE_EXTENSIONS.iter().map(|ext| mime(ext)).collect();
    assert_eq!(declared, read, "MimeType= must list exactly the formats gpen-studio opens");
}

#[test]
fn every_icon_size_is_rendered_at_its_size() {
    let hicolor = repo_root().join("assets/icons/hicolor");
    let svg = hicolor.join(format!("scalable/apps/{APP_ID}.svg"));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"), "{}", svg.display());
    let mut sizes = Vec::new();
    for dir in std::fs::read_dir(&hicolor).unwrap() {
        let name = dir.unwrap().file_name().to_string_lossy().to_string();
        let Some((w, h)) = name.split_once('x') else { continue };
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        let png = image::open(hicolor.join(&name).join(format!("apps/{APP_ID}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (w, h), "{name}");
        assert!(png.color().has_alpha(), "{name}: the rounded corners need transparency");
        sizes.push(w);
    }
    sizes.sort();
    // The sizes desktop environments ask for in menus, docks and task switchers.
    for wanted in [16, 24, 32, 48, 64, 128, 256, 512] {
        assert!(sizes.contains(&wanted), "no {wanted}x{wanted} icon: {sizes:?}");
    }
    let icon = window_icon();
    assert_eq!((icon.width, icon.height, icon.rgba.len()), (256, 256, 256 * 256 * 4));
}

/// `[package.metadata.deb].assets` as (source, dest) pairs, read through `cargo metadata`.
fn deb_assets() -> Vec<(String, String)> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let assets = meta["packages"][0]["metadata"]["deb"]["assets"].as_array().expect("deb assets").clone();
    assets.iter().map(|a| (a[0].as_str().unwrap().to_string(), a[1].as_str().unwrap().to_string())).collect()
}

fn dest_of(assets: &[(String, String)], source: &str) -> String {
    assets.iter().find(|(s, _)| s == source).map(|(_, d)| d.clone()).unwrap_or_else(|| panic!("{source} is not packaged"))
}

#[test]
fn the_package_puts_files_where_the_installed_binary_looks() {
    let assets = deb_assets();
    let binary = dest_of(&assets, "target/deb-root/gpen-studio");
    assert_eq!(binary, "usr/bin/");
    let exe = Path::new("/").join(&binary).join(env!("CARGO_PKG_NAME"));

    // The face detector's weights: the first folder the installed binary tries.
    let mtcnn = Path::new("/").join(dest_of(&assets, "models/mtcnn/*.pt"));
    let first = models_dir_candidates(Some(&exe), Path::new("/home/someone/.local/share/gpen-studio"))[0].clone();
    assert_eq!(first, mtcnn.components().collect::<PathBuf>());

    // libtorch: build.rs gives the binary an rpath of $ORIGIN/../lib/gpen-studio/torch/lib, and
    // build-deb.sh stages libtorch under target/deb-root/lib/torch/lib.
    let build_rs = std::fs::read_to_string(repo_root().join("build.rs")).unwrap();
    assert!(build_rs.contains("$ORIGIN/../lib/gpen-studio/torch/lib"));
    let libs = Path::new("/").join(dest_of(&assets, "target/deb-root/lib/**/*"));
    let rpath_dir = exe.parent().unwrap().join("../lib/gpen-studio/torch/lib");
    assert_eq!(normalize(&rpath_dir), libs.join("torch/lib"));

    assert!(dest_of(&assets, &format!("packaging/{APP_ID}.desktop")).starts_with("usr/share/applications"));
    assert_eq!(dest_of(&assets, "assets/icons/hicolor/**/*"), "usr/share/icons/hicolor/");
    // Every asset from the repository (not staged by the build) exists.
    for (source, _) in assets.iter().filter(|(s, _)| !s.starts_with("target/")) {
        let fixed = source.split('*').next().unwrap();
        assert!(repo_root().join(fixed).exists(), "{source}");
    }
}

#[test]
fn completions_and_man_pages_go_where_shells_and_man_look() {
    let assets = deb_assets();
    // The standard places of Debian's bash-completion, zsh, fish and man-db.
    for (staged, dest) in [
        ("target/deb-root/completions/gpen-studio", "usr/share/bash-completion/completions/gpen-studio"),
        ("target/deb-root/completions/_gpen-studio", "usr/share/zsh/vendor-completions/_gpen-studio"),
        ("target/deb-root/completions/gpen-studio.fish", "usr/share/fish/vendor_completions.d/gpen-studio.fish"),
        ("target/deb-root/man/*.1.gz", "usr/share/man/man1/"),
    ] {
        assert_eq!(dest_of(&assets, staged), dest, "{staged}");
    }
    // build-deb.sh stages each of them with the binary's own generators.
    let script = std::fs::read_to_string(repo_root().join("packaging/build-deb.sh")).unwrap();
    for line in [
        r#""$bin" completions bash >"$root/completions/gpen-studio""#,
        r#""$bin" completions zsh >"$root/completions/_gpen-studio""#,
        r#""$bin" completions fish >"$root/completions/gpen-studio.fish""#,
        r#""$bin" man --dir "$root/man""#,
        r#"gzip -9n "$root"/man/*.1"#,
    ] {
        assert!(script.lines().any(|l| l.trim() == line), "build-deb.sh does not run: {line}");
    }
    // And what they generate works: bash loads the completion for the command.
    let script = std::process::Command::new(common::bin()).args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpen-studio");
    std::fs::write(&file, &script.stdout).unwrap();
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source '{}' && complete -p gpen-studio", file.display()))
        .output()
        .unwrap();
    assert!(loaded.status.success() && String::from_utf8_lossy(&loaded.stdout).contains("gpen-studio"), "{loaded:?}");
}

/// `a/b/../c` → `a/c`, without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
