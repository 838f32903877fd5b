//! Turning what the user named (files, folders) into the list of photos to process. The walk
//! itself, and how each photo's output is named, are in [`crate::archive::walk`].

use crate::archive::walk::{self, Photo, Source};
pub use crate::archive::walk::{IMAGE_EXTENSIONS, is_image_name};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Files as given; folders become their image files (with `recursive`, also those of sub-folders),
/// shortest paths first. A file reached twice is listed once. See [`walk::walk`].
pub fn collect_photos(inputs: &[PathBuf], recursive: bool) -> Vec<PathBuf> {
    find_photos(inputs, recursive, None).photos.into_iter().map(|p| p.path).collect()
}

/// The photos of `inputs` with their output keys, never taking anything inside `out_dir`.
pub fn find_photos(inputs: &[PathBuf], recursive: bool, out_dir: Option<&Path>) -> walk::Walk {
    let sources: Vec<Source> = inputs.iter().cloned().map(Source::given).collect();
    walk::walk(&sources, recursive, out_dir)
}

/// The one namer of results: each photo's output is `OUTDIR/<key>.<ext>` (see [`Photo::key`]; the
/// extension is appended, not swapped, so a key that keeps its input's extension, `x.jpg`, gives
/// `x.jpg.png`). Keys are unique within a run planned by [`walk::walk`]; photos queued one by one
/// (the window's queue) could still share one, and the later then gets `<key>-2`, so no result
/// replaces another. Naming creates nothing: the engine prepares each folder of results the first
/// time it writes there ([`OutputNamer::prepare_folder`]), a dry run and a report only name.
#[derive(Debug, Clone)]
pub struct OutputNamer {
    dir: PathBuf,
    extension: String,
    used: HashSet<PathBuf>,
    prepared: HashSet<PathBuf>,
}

impl OutputNamer {
    pub fn new(dir: &Path, extension: &str) -> Self {
        OutputNamer { dir: dir.into(), extension: extension.into(), used: HashSet::new(), prepared: HashSet::new() }
    }

    /// The output of `photo`, given the photos this namer named before it.
    pub fn name(&mut self, photo: &Photo) -> PathBuf {
        let mut key = photo.key.clone();
        let mut n = 2;
        while !self.used.insert(key.clone()) {
            let mut name = photo.key.as_os_str().to_owned();
            name.push(format!("-{n}"));
            key = PathBuf::from(name);
            n += 1;
        }
        let mut name = key.clone().into_os_string();
        name.push(".");
        name.push(&self.extension);
        let mut output = self.dir.join(name);
        // An extension longer than the input's may push a name past the file system's limit.
        if output.file_name().is_some_and(|n| n.len() > crate::paths::NAME_MAX) {
            let stem = key.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            output.set_file_name(crate::paths::fit_file_name("", &stem, &format!(".{}", self.extension)));
        }
        output
    }

    /// The first time a folder of results is written to in a run, creates it and removes the
    /// temporary files that killed writers left there (outputs go to many folders when they mirror
    /// the input tree). A folder that cannot be created shows as that photo's write error.
    pub fn prepare_folder(&mut self, output: &Path) {
        if let Some(parent) = output.parent()
            && self.prepared.insert(parent.to_path_buf())
        {
            let _ = std::fs::create_dir_all(parent);
            crate::paths::remove_stale_partials(parent);
        }
    }
}

/// Where a second generator's results go when it is compared with the run's (`restore
/// --compare-with B`, the window's A | B): `OUT/compare-<B's file stem>/`, named as the run names.
pub fn compare_folder(out: &Path, weights_b: &Path) -> PathBuf {
    let stem = weights_b.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "B".into());
    out.join(format!("compare-{stem}"))
}

/// The output of each photo, in order, as a run names them.
pub fn plan_outputs(photos: &[Photo], outdir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut namer = OutputNamer::new(outdir, extension);
    photos.iter().map(|p| namer.name(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_queued_one_by_one_never_share_an_output() {
        let mut namer = OutputNamer::new(Path::new("o"), "png");
        let names: Vec<PathBuf> = ["x/a.jpg", "y/a.png", "b.tif"].iter().map(|p| namer.name(&Photo::direct(p.into()))).collect();
        assert_eq!(names, [PathBuf::from("o/a.png"), "o/a-2.png".into(), "o/b.png".into()]);
    }
}
