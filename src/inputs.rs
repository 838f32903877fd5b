//! Turning what the user named (files, folders) into the list of photos to process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// File extensions taken from folders (files named explicitly are tried whatever their name).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif"];

pub fn is_image_name(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Files as given; folders become their image files in name order (with `recursive`, also those of
/// sub-folders). A file reached twice is listed once.
pub fn collect_photos(inputs: &[PathBuf], recursive: bool) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for input in inputs {
        let mut files = Vec::new();
        if input.is_dir() {
            walk(input, recursive, &mut files);
        } else {
            files.push(input.clone());
        }
        files.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
        out.extend(files);
    }
    out
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            if recursive {
                walk(&p, recursive, out);
            }
        } else if is_image_name(&p) {
            out.push(p);
        }
    }
}

/// Gives each input its output name `OUTDIR/<stem>.<ext>`, unique within a run when two inputs
/// share a stem (`a.jpg`, `a.png` become `a.png` and `a-2.png`). Deterministic for the same inputs
/// in the same order, so a rerun maps every input to the same output and can skip finished ones.
#[derive(Debug, Clone)]
pub struct OutputNamer {
    dir: PathBuf,
    extension: String,
    used: HashSet<String>,
}

impl OutputNamer {
    pub fn new(dir: &Path, extension: &str) -> Self {
        OutputNamer { dir: dir.into(), extension: extension.into(), used: HashSet::new() }
    }

    pub fn name(&mut self, input: &Path) -> PathBuf {
        let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "photo".into());
        let ext = &self.extension;
        let mut name = format!("{stem}.{ext}");
        let mut n = 2;
        while !self.used.insert(name.clone()) {
            name = format!("{stem}-{n}.{ext}");
            n += 1;
        }
        self.dir.join(name)
    }
}

/// [`OutputNamer`] over a whole list.
pub fn plan_outputs(inputs: &[PathBuf], outdir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut namer = OutputNamer::new(outdir, extension);
    inputs.iter().map(|i| namer.name(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_sorted_recursive_on_request_without_duplicates() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        for f in ["b.jpg", "a.PNG", "notes.txt", "sub/c.webp"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let flat = collect_photos(&[root.to_path_buf(), root.join("b.jpg")], false);
        assert_eq!(flat, [root.join("a.PNG"), root.join("b.jpg")]);
        let deep = collect_photos(&[root.to_path_buf()], true);
        assert_eq!(deep, [root.join("a.PNG"), root.join("b.jpg"), root.join("sub/c.webp")]);
    }

    #[test]
    fn output_names_are_unique_and_stable() {
        let out = plan_outputs(&["x/a.jpg".into(), "y/a.png".into(), "b.tif".into()], Path::new("o"), "png");
        assert_eq!(out, [PathBuf::from("o/a.png"), "o/a-2.png".into(), "o/b.png".into()]);
    }
}
