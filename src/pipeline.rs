//! Whole-photo restoration: read -> detect -> align -> restore -> paste -> write, for many photos.
//!
//! Faces from all photos share GPEN batches (a photo's faces do not have to fill a batch alone), and
//! each photo is pasted and written as soon as all of its faces are back. Every photo ends as
//! restored, without faces (written unchanged), already done (kept), or failed with its error; every
//! face ends restored or reported.

use crate::align::{self, AlignedFace};
use crate::detect::{Face, FaceDetector};
use crate::paste::{self, PasteFace};
use crate::photo::{self, OutputFormat, Photo, ReadLimits};
use crate::restorer::{FaceRestorer, restore_splitting};
use image::RgbImage;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::Device;

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub out_dir: PathBuf,
    /// Faces per restorer call (halved automatically when memory runs out).
    pub batch: usize,
    /// 1 = fully restored faces, 0 = original faces (GPEN's `alpha`).
    pub strength: f32,
    pub format: OutputFormat,
    /// Also write each face as `<name>_faceNN.png`: aligned crop | restored crop.
    pub save_faces: bool,
    /// Replace existing results (otherwise they are kept, so a rerun resumes).
    pub overwrite: bool,
    pub limits: ReadLimits,
    /// Where alignment warps run (the restorer's device).
    pub device: Device,
}

/// How one photo ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Restored { output: PathBuf, faces: usize },
    /// No face found: the photo is written unchanged (re-encoded, metadata kept).
    NoFaces { output: PathBuf },
    /// The result exists from an earlier run and `overwrite` is off.
    AlreadyDone { output: PathBuf },
    /// Nothing was written for this photo; a rerun tries it again.
    Failed { error: String, faces_failed: usize },
}

/// Progress reports, in the order things happen.
#[derive(Debug, Clone)]
pub enum Event {
    /// A photo was read and searched: it holds `faces` faces.
    FacesFound { input: PathBuf, faces: usize },
    /// A batch of faces went through the restorer.
    BatchDone { faces: usize, failed: usize },
    PhotoDone { input: PathBuf, outcome: Outcome },
}

/// Wall time spent in each step, for `bench pipeline` and the summary.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StageTimes {
    pub decode: Duration,
    pub detect: Duration,
    pub align: Duration,
    pub restore: Duration,
    pub paste: Duration,
    pub encode: Duration,
}

impl StageTimes {
    pub fn total(&self) -> Duration {
        self.decode + self.detect + self.align + self.restore + self.paste + self.encode
    }

    pub fn named(&self) -> [(&'static str, Duration); 6] {
        [
            ("decode", self.decode),
            ("detect", self.detect),
            ("align", self.align),
            ("restore (GPEN)", self.restore),
            ("paste", self.paste),
            ("encode", self.encode),
        ]
    }
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub photos_restored: usize,
    pub photos_without_faces: usize,
    pub photos_already_done: usize,
    pub photos_failed: usize,
    pub faces_restored: usize,
    pub faces_failed: usize,
    pub times: StageTimes,
}

impl Summary {
    pub fn any_failed(&self) -> bool {
        self.photos_failed > 0 || self.faces_failed > 0
    }

    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Restored { faces, .. } => {
                self.photos_restored += 1;
                self.faces_restored += faces;
            }
            Outcome::NoFaces { .. } => self.photos_without_faces += 1,
            Outcome::AlreadyDone { .. } => self.photos_already_done += 1,
            Outcome::Failed { faces_failed, .. } => {
                self.photos_failed += 1;
                self.faces_failed += faces_failed;
            }
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "photos restored {}, without faces {}, already done {}, failed {}; faces restored {}, failed {}",
            self.photos_restored,
            self.photos_without_faces,
            self.photos_already_done,
            self.photos_failed,
            self.faces_restored,
            self.faces_failed
        )
    }
}

/// A photo whose faces are in the restorer's queue.
struct Pending {
    input: PathBuf,
    output: PathBuf,
    photo: Photo,
    faces: Vec<Face>,
    aligned: Vec<AlignedFace>,
    restored: Vec<Option<Result<RgbImage, String>>>,
    waiting: usize,
}

/// Restores `inputs` (photo files) into `options.out_dir`, reporting through `on_event`.
pub fn restore_photos(
    inputs: &[PathBuf],
    detector: &dyn FaceDetector,
    restorer: &dyn FaceRestorer,
    options: &PipelineOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Summary {
    let mut run = Run {
        detector,
        restorer,
        options,
        on_event,
        summary: Summary::default(),
        pending: Vec::new(),
        queue: VecDeque::new(),
        mask: paste::crop_mask(restorer.size()),
    };
    let outputs = crate::inputs::plan_outputs(inputs, &options.out_dir, options.format.extension());
    for (input, output) in inputs.iter().zip(outputs) {
        if let Some(outcome) = run.start(input, output) {
            run.finish(input.clone(), outcome);
        }
        while run.queue.len() >= options.batch.max(1) {
            run.restore_next_batch();
        }
    }
    while !run.queue.is_empty() {
        run.restore_next_batch();
    }
    run.summary
}

struct Run<'a> {
    detector: &'a dyn FaceDetector,
    restorer: &'a dyn FaceRestorer,
    options: &'a PipelineOptions,
    on_event: &'a mut dyn FnMut(&Event),
    summary: Summary,
    pending: Vec<Pending>,
    /// (index into `pending`, face index) in arrival order.
    queue: VecDeque<(usize, usize)>,
    mask: Vec<f32>,
}

impl Run<'_> {
    /// Reads, detects and aligns one photo; queues its faces. Returns an outcome when the photo is
    /// already finished (failed, done earlier, or without faces).
    fn start(&mut self, input: &Path, output: PathBuf) -> Option<Outcome> {
        if crate::paths::same_file(input, &output) {
            let error = "the result would replace the input; choose another output folder".into();
            return Some(Outcome::Failed { error, faces_failed: 0 });
        }
        if output.exists() && !self.options.overwrite {
            return Some(Outcome::AlreadyDone { output });
        }
        let t = Instant::now();
        let photo = match photo::read_photo(input, &self.options.limits) {
            Ok(p) => p,
            Err(e) => return Some(Outcome::Failed { error: e.to_string(), faces_failed: 0 }),
        };
        self.summary.times.decode += t.elapsed();

        let t = Instant::now();
        let faces = match self.detector.detect(&photo.pixels) {
            Ok(f) => f,
            Err(e) => return Some(Outcome::Failed { error: format!("face detection failed: {e}"), faces_failed: 0 }),
        };
        self.summary.times.detect += t.elapsed();
        (self.on_event)(&Event::FacesFound { input: input.into(), faces: faces.len() });
        if faces.is_empty() {
            let t = Instant::now();
            let written = write(&output, &photo.pixels, &photo, self.options.format);
            self.summary.times.encode += t.elapsed();
            return Some(match written {
                Ok(()) => Outcome::NoFaces { output },
                Err(error) => Outcome::Failed { error, faces_failed: 0 },
            });
        }

        let t = Instant::now();
        let landmarks: Vec<_> = faces.iter().map(|f| f.landmarks).collect();
        let aligned = match align::align_faces(&photo.pixels, &landmarks, self.restorer.size(), self.options.device) {
            Ok(a) => a,
            Err(e) => return Some(Outcome::Failed { error: format!("alignment failed: {e}"), faces_failed: faces.len() }),
        };
        self.summary.times.align += t.elapsed();

        let index = self.pending.len();
        self.queue.extend((0..faces.len()).map(|f| (index, f)));
        self.pending.push(Pending {
            input: input.into(),
            output,
            restored: vec![None; faces.len()],
            waiting: faces.len(),
            photo,
            faces,
            aligned,
        });
        None
    }

    fn restore_next_batch(&mut self) {
        let n = self.queue.len().min(self.options.batch.max(1));
        let batch: Vec<(usize, usize)> = self.queue.drain(..n).collect();
        let t = Instant::now();
        let results = {
            let crops: Vec<&RgbImage> = batch.iter().map(|&(p, f)| &self.pending[p].aligned[f].crop).collect();
            restore_splitting(self.restorer, &crops)
        };
        self.summary.times.restore += t.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        (self.on_event)(&Event::BatchDone { faces: n, failed });
        let mut completed = Vec::new();
        for ((p, f), result) in batch.into_iter().zip(results) {
            let pending = &mut self.pending[p];
            pending.restored[f] = Some(result);
            pending.waiting -= 1;
            if pending.waiting == 0 {
                completed.push(p);
            }
        }
        for p in completed {
            let (input, outcome) = self.complete(p);
            self.finish(input, outcome);
        }
    }

    /// Pastes and writes a photo whose faces are all back, and frees its memory.
    fn complete(&mut self, index: usize) -> (PathBuf, Outcome) {
        let pending = &mut self.pending[index];
        let restored: Vec<Result<RgbImage, String>> = pending.restored.drain(..).map(|r| r.expect("all faces back")).collect();
        let photo = std::mem::replace(&mut pending.photo.pixels, RgbImage::new(0, 0));
        let (input, output) = (pending.input.clone(), pending.output.clone());
        let errors: Vec<String> =
            restored.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| format!("face {i}: {e}"))).collect();
        if !errors.is_empty() {
            let error = format!("{} of {} faces could not be restored ({})", errors.len(), restored.len(), errors.join("; "));
            let faces_failed = errors.len();
            pending.aligned.clear();
            return (input, Outcome::Failed { error, faces_failed });
        }
        let faces: Vec<RgbImage> = restored.into_iter().map(Result::unwrap).collect();

        let t = Instant::now();
        let paste_faces: Vec<PasteFace> = faces
            .iter()
            .zip(&pending.aligned)
            .zip(&pending.faces)
            .map(|((restored, aligned), face)| PasteFace {
                restored,
                aligned: &aligned.crop,
                tfm: aligned.tfm,
                box_side: face.width().min(face.height()),
            })
            .collect();
        let result = paste::paste_faces(&photo, &paste_faces, self.options.strength, &self.mask);
        self.summary.times.paste += t.elapsed();

        let pending = &self.pending[index];
        let t = Instant::now();
        let written = write(&output, &result, &pending.photo, self.options.format).and_then(|()| {
            if self.options.save_faces { save_faces(&output, &pending.aligned, &faces) } else { Ok(()) }
        });
        self.summary.times.encode += t.elapsed();
        let count = faces.len();
        let pending = &mut self.pending[index];
        pending.aligned.clear();
        pending.faces.clear();
        match written {
            Ok(()) => (input, Outcome::Restored { output, faces: count }),
            Err(error) => (input, Outcome::Failed { error, faces_failed: 0 }),
        }
    }

    fn finish(&mut self, input: PathBuf, outcome: Outcome) {
        self.summary.count(&outcome);
        (self.on_event)(&Event::PhotoDone { input, outcome });
    }
}

fn write(output: &Path, pixels: &RgbImage, source: &Photo, format: OutputFormat) -> Result<(), String> {
    photo::write_photo(output, pixels, format, &source.meta()).map_err(|e| e.to_string())
}

/// `<name>_faceNN.png`: the aligned input and the restored face side by side (GPEN's --save_face).
fn save_faces(output: &Path, aligned: &[AlignedFace], restored: &[RgbImage]) -> Result<(), String> {
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    for (i, (a, r)) in aligned.iter().zip(restored).enumerate() {
        let s = a.crop.width();
        let mut pair = RgbImage::new(2 * s, s);
        image::imageops::replace(&mut pair, &a.crop, 0, 0);
        image::imageops::replace(&mut pair, r, s as i64, 0);
        let path = output.with_file_name(format!("{stem}_face{i:02}.png"));
        photo::write_photo(&path, &pair, OutputFormat::Png, &Default::default()).map_err(|e| e.to_string())?;
    }
    Ok(())
}
