//! Manifests for `--from-list`: one photo (or folder) a line, relative to a root folder.
//!
//! Blank lines and lines starting with `#` are ignored; surrounding spaces are kept out. A
//! relative line is a path under the root, and its result mirrors that path under the output
//! folder. An absolute line is taken as it is; its result mirrors its path under the root when it
//! lies inside it, else it goes to the top of the output folder under its file name. That is what
//! `report merge --failed-list` writes: absolute paths, to be run with the `--list-root` it names.

use super::walk::Source;
use std::path::{Path, PathBuf};

/// A list (`--from-list`) that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot read the list {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("the list root {} is not a folder", .0.display())]
    RootNotAFolder(PathBuf),
}

/// The entries of the list `file`, as walk sources under `root` (default: the list's folder).
pub fn read(file: &Path, root: Option<&Path>) -> Result<(Vec<Source>, PathBuf), ListError> {
    let text = std::fs::read_to_string(file).map_err(|source| ListError::Unreadable { path: file.into(), source })?;
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf(),
    };
    if !root.is_dir() {
        return Err(ListError::RootNotAFolder(root));
    }
    Ok((parse(&text, &root), root))
}

/// The sources of a list's `text` under `root`.
pub fn parse(text: &str, root: &Path) -> Vec<Source> {
    let canonical_root = root.canonicalize().ok();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let entry = Path::new(line);
            if entry.is_absolute() {
                let inside = strip_root(entry, root).or_else(|| canonical_root.as_deref().and_then(|r| strip_root(entry, r)));
                let rel = inside.unwrap_or_else(|| PathBuf::from(entry.file_name().unwrap_or(entry.as_os_str())));
                Source { path: entry.to_path_buf(), rel: Some(rel) }
            } else {
                Source { path: root.join(entry), rel: Some(entry.to_path_buf()) }
            }
        })
        .collect()
}

fn strip_root(entry: &Path, root: &Path) -> Option<PathBuf> {
    let abs_root = std::path::absolute(root).ok()?;
    entry.strip_prefix(&abs_root).ok().filter(|r| !r.as_os_str().is_empty()).map(Path::to_path_buf)
}

/// Writes `paths` as a list (atomically), after a comment line `header`.
pub fn write(file: &Path, header: &str, paths: &[PathBuf]) -> std::io::Result<()> {
    let mut text = String::new();
    for line in header.lines() {
        text += &format!("# {line}\n");
    }
    for p in paths {
        text += &format!("{}\n", p.display());
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::paths::write_atomically(file, |tmp| std::fs::write(tmp, &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_relative_to_the_root_comments_and_blanks_ignored() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("archive");
        std::fs::create_dir_all(root.join("box1")).unwrap();
        let text = format!("# shard list\n\nbox1/a.jpg\n  box2/b.png  \n{}\n/elsewhere/c.tif\n", root.join("box1/d.jpg").display());
        let sources = parse(&text, &root);
        let got: Vec<(PathBuf, PathBuf)> = sources.into_iter().map(|s| (s.path, s.rel.unwrap())).collect();
        assert_eq!(
            got,
            [
                (root.join("box1/a.jpg"), "box1/a.jpg".into()),
                (root.join("box2/b.png"), "box2/b.png".into()),
                (root.join("box1/d.jpg"), "box1/d.jpg".into()),
                ("/elsewhere/c.tif".into(), "c.tif".into()),
            ]
        );
    }
}
