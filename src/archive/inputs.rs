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

/// Gives each photo its output path `OUTDIR/<key>.<ext>` (see [`Photo::key`]). Keys are unique
/// within a run planned by [`walk::walk`]; photos queued one by one (the window's queue) could
/// still share one, and the later then gets `<key>-2`, so no result replaces another. The
/// first time a folder of results is named in a run, it is created, and the temporary files that
/// killed writers left there are removed (outputs go to many folders when they mirror the input
/// tree). A folder that cannot be created shows as that photo's write error.
#[derive(Debug, Clone)]
pub struct OutputNamer {
    dir: PathBuf,
    extension: String,
    used: HashSet<PathBuf>,
    cleaned: HashSet<PathBuf>,
}

impl OutputNamer {
    pub fn new(dir: &Path, extension: &str) -> Self {
        OutputNamer { dir: dir.into(), extension: extension.into(), used: HashSet::new(), cleaned: HashSet::new() }
    }

    pub fn name(&mut self, photo: &Photo) -> PathBuf {
        let mut key = photo.key.clone();
        let mut n = 2;
        while !self.used.insert(key.clone()) {
            let mut name = photo.key.as_os_str().to_owned();
            name.push(format!("-{n}"));
            key = PathBuf::from(name);
            n += 1;
        }
        let output = walk::output_path(&self.dir, &key, &self.extension);
        if let Some(parent) = output.parent()
            && self.cleaned.insert(parent.to_path_buf())
        {
            let _ = std::fs::create_dir_all(parent);
            crate::paths::remove_stale_partials(parent);
        }
        output
    }
}

/// The output of each photo, as a run names them.
pub fn plan_outputs(photos: &[Photo], outdir: &Path, extension: &str) -> Vec<PathBuf> {
    photos.iter().map(|p| p.output(outdir, extension)).collect()
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
