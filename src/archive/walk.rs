//! Walking the inputs into photos, each with its path relative to the folder it was found under.
//!
//! Folders are searched breadth-first, so the first path met to a file or folder is a shortest
//! one; every real folder is searched once (a symlink to a folder already searched, or to one of
//! its own ancestors, is not followed, and a loop is reported once), and the output folder with
//! everything inside it is skipped, so a rerun never takes its own results as input.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};

/// One photo to process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Photo {
    /// The file to open, as the user's paths spell it.
    pub path: PathBuf,
    /// Its path under the folder it was found in (a file given directly: its file name; a
    /// manifest entry: its path under the list's root). The shard is a hash of it.
    pub rel: PathBuf,
    /// Where the result goes, under the output folder, without the output format's extension:
    /// `rel` without its extension (`a/x.jpg` → `a/x`), unless two photos of the run would share
    /// it (see [`assign_keys`]).
    pub key: PathBuf,
}

impl Photo {
    /// A file handed over on its own (the window's queue, tests): its result goes to the top of the
    /// output folder under its own stem.
    pub fn direct(path: PathBuf) -> Photo {
        let rel = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
        let key = default_key(&rel);
        Photo { path, rel, key }
    }
}

/// `rel` without its extension.
fn default_key(rel: &Path) -> PathBuf {
    rel.with_extension("")
}

/// An input to walk: a file or a folder, and the path under the run's root it stands for.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    /// `None` for what the command line names (a folder is its own root; a file's `rel` is its
    /// name); `Some(p)` for a manifest entry, whose `rel` is `p` (a folder: `p/<path inside>`).
    pub rel: Option<PathBuf>,
}

impl Source {
    pub fn given(path: PathBuf) -> Source {
        Source { path, rel: None }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    pub photos: Vec<Photo>,
    /// What was skipped and why (a symlink loop, the output folder, ...), each once.
    pub notes: Vec<String>,
}

/// File extensions taken from folders (files named explicitly are tried whatever their name).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "heic", "heif", "avif"];

pub fn is_image_name(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Walks `sources` (folders only one level deep unless `recursive`), skipping `out_dir` and
/// everything inside it. A file reached twice (named twice, or through a symlink) is listed
/// once, under its first (shortest) path. Keys are assigned ([`assign_keys`]).
pub fn walk(sources: &[Source], recursive: bool, out_dir: Option<&Path>) -> Walk {
    let out = out_dir.and_then(|d| d.canonicalize().ok());
    let inside_out = |canonical: &Path| out.as_deref().is_some_and(|o| canonical.starts_with(o));
    let mut w = Walk::default();
    let mut seen_files = HashSet::new();
    let mut searched = HashSet::new();
    for source in sources {
        let canonical = source.path.canonicalize().ok();
        if canonical.as_deref().is_some_and(inside_out) {
            w.notes.push(format!("skipped {}: inside the output folder", source.path.display()));
            continue;
        }
        if !source.path.is_dir() {
            // A file that cannot be opened still goes through: the run reports it as failed.
            let rel = source.rel.clone().unwrap_or_else(|| PathBuf::from(source.path.file_name().unwrap_or(source.path.as_os_str())));
            if seen_files.insert(canonical.unwrap_or_else(|| source.path.clone())) {
                w.photos.push(Photo { path: source.path.clone(), key: default_key(&rel), rel });
            }
            continue;
        }
        let first = w.photos.len();
        let prefix = source.rel.clone().unwrap_or_default();
        let mut queue = VecDeque::from([(source.path.clone(), prefix, canonical.expect("a folder has a canonical path"))]);
        searched.insert(queue[0].2.clone());
        while let Some((dir, rel_dir, dir_canonical)) = queue.pop_front() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                w.notes.push(format!("cannot read the folder {}", dir.display()));
                continue;
            };
            let mut names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.sort();
            for name in names {
                let path = dir.join(&name);
                let rel = rel_dir.join(&name);
                let Ok(canonical) = path.canonicalize() else { continue }; // a dangling symlink
                if inside_out(&canonical) {
                    w.notes.push(format!("skipped {}: the output folder", path.display()));
                    continue;
                }
                if canonical.is_dir() {
                    if !recursive {
                        continue;
                    }
                    if searched.insert(canonical.clone()) {
                        queue.push_back((path, rel, canonical));
                    } else if dir_canonical.starts_with(&canonical) {
                        w.notes.push(format!("skipped {}: a symlink loop back to {} (not followed)", path.display(), canonical.display()));
                    }
                    // Else a second way into a folder searched already: its photos are listed once.
                } else if is_image_name(&path) && !crate::paths::is_partial_name(&name.to_string_lossy()) && seen_files.insert(canonical) {
                    w.photos.push(Photo { path, key: default_key(&rel), rel });
                }
            }
        }
        // Breadth-first found the shortest paths; the list reads in tree order (a folder's
        // photos, then each sub-folder's), as the user sees the folder.
        w.photos[first..].sort_by(|a, b| a.rel.cmp(&b.rel));
    }
    assign_keys(&mut w.photos);
    w
}

/// Makes every photo's output key unique within the run, deterministically from the set of paths:
/// photos whose default keys clash (`a/x.jpg` and `a/x.png`) keep their input's extension in the
/// key (`a/x.jpg`, `a/x.png` → results `a/x.jpg.png`, `a/x.png.png`); what still clashes (files
/// of the same name given from two folders) gets `-2`, `-3`, ... in the order of their paths.
pub fn assign_keys(photos: &mut [Photo]) {
    let mut count: HashMap<PathBuf, usize> = HashMap::new();
    for p in photos.iter() {
        *count.entry(default_key(&p.rel)).or_default() += 1;
    }
    for p in photos.iter_mut() {
        p.key = if count[&default_key(&p.rel)] > 1 { p.rel.clone() } else { default_key(&p.rel) };
    }
    let mut order: Vec<usize> = (0..photos.len()).collect();
    order.sort_by(|&a, &b| (&photos[a].key, &photos[a].path).cmp(&(&photos[b].key, &photos[b].path)));
    let mut used = HashSet::new();
    for i in order {
        let base = photos[i].key.clone();
        let mut key = base.clone();
        let mut n = 2;
        while !used.insert(key.clone()) {
            let mut name = base.as_os_str().to_owned();
            name.push(format!("-{n}"));
            key = PathBuf::from(name);
            n += 1;
        }
        photos[i].key = key;
    }
}

/// `path` written with `/` and without `.` components, as a shard hash reads it.
pub fn normalized(rel: &Path) -> String {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
    }

    fn rels(w: &Walk) -> Vec<String> {
        w.photos.iter().map(|p| normalized(&p.rel)).collect()
    }

    #[test]
    fn folders_expand_sorted_recursive_on_request_without_duplicates() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["b.jpg", "a.PNG", "notes.txt", "sub/c.webp"]);
        let flat = walk(&[Source::given(d.path().into()), Source::given(d.path().join("b.jpg"))], false, None);
        assert_eq!(rels(&flat), ["a.PNG", "b.jpg"]);
        let deep = walk(&[Source::given(d.path().into())], true, None);
        assert_eq!(rels(&deep), ["a.PNG", "b.jpg", "sub/c.webp"]);
        assert_eq!(deep.photos[2].path, d.path().join("sub/c.webp"));
        touch(d.path(), &["A/z.png"]);
        let deep = walk(&[Source::given(d.path().into())], true, None);
        assert_eq!(rels(&deep), ["A/z.png", "a.PNG", "b.jpg", "sub/c.webp"], "tree order, not breadth-first");
    }

    #[test]
    fn same_names_in_two_folders_mirror_and_a_direct_file_goes_to_the_top() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["in/a/x.jpg", "in/b/x.jpg", "single/y.tif"]);
        let w = walk(&[Source::given(d.path().join("in")), Source::given(d.path().join("single/y.tif"))], true, None);
        let outs = crate::archive::inputs::plan_outputs(&w.photos, Path::new("out"), "png");
        assert_eq!(outs, [PathBuf::from("out/a/x.png"), "out/b/x.png".into(), "out/y.png".into()]);
        // The same photo alone gets the same name: names do not depend on the rest of the run.
        let alone = walk(&[Source::given(d.path().join("in/b"))], true, None);
        assert_eq!(crate::archive::inputs::plan_outputs(&alone.photos, Path::new("out"), "png"), [PathBuf::from("out/x.png")]);
    }

    #[test]
    fn clashing_names_are_told_apart_by_the_path_alone() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["x.jpg", "x.png", "y.jpg", "other/y.jpg"]);
        let w = walk(&[Source::given(d.path().into()), Source::given(d.path().join("other/y.jpg"))], false, None);
        let keys: Vec<String> = w.photos.iter().map(|p| normalized(&p.key)).collect();
        // The two y.jpg are numbered in the order of their paths (".../other/y.jpg" first), not
        // in the order they were given.
        assert_eq!(keys, ["x.jpg", "x.png", "y.jpg-2", "y.jpg"]);
    }

    #[test]
    fn the_output_folder_inside_the_input_is_never_walked() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["in/a.jpg", "in/out/a.png", "in/out/sub/b.png"]);
        let w = walk(&[Source::given(d.path().join("in"))], true, Some(&d.path().join("in/out")));
        assert_eq!(rels(&w), ["a.jpg"]);
        assert_eq!(w.notes.len(), 1, "{:?}", w.notes);
    }

    #[test]
    fn a_symlink_loop_is_followed_once_and_reported_once_with_the_shortest_path() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("in");
        touch(&root, &["a/thin.png", "b/wide.png"]);
        std::os::unix::fs::symlink(&root, root.join("a/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("b"), root.join("a/to-b")).unwrap();
        let w = walk(&[Source::given(root.clone())], true, None);
        assert_eq!(rels(&w), ["a/thin.png", "b/wide.png"]);
        let loops: Vec<&String> = w.notes.iter().filter(|n| n.contains("loop")).collect();
        assert_eq!(loops.len(), 1, "{:?}", w.notes);
        assert!(loops[0].contains("a/loop"), "{loops:?}");
    }

    #[test]
    fn partial_files_are_not_photos() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["a.png"]);
        std::fs::write(d.path().join(crate::paths::partial_name("b.png")), b"x").unwrap();
        assert_eq!(rels(&walk(&[Source::given(d.path().into())], false, None)), ["a.png"]);
    }
}
