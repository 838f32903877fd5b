//! Whole-photo restoration: read -> detect -> align -> restore -> paste -> write, for many photos.
//!
//! Faces from all photos share restorer batches (a photo's faces do not have to fill a batch alone),
//! and each photo is pasted and written as soon as all of its faces are back. Every photo ends as
//! restored, without faces (written unchanged), already done (kept), failed or cancelled; every face
//! ends restored or reported. Nothing partial is ever written: results appear through a rename.
//!
//! [`Pipeline`] is driven step by step (the engine's worker checks its commands between steps);
//! [`restore_photos`] drives it over a fixed list with a fixed batch size.

use crate::align::{self, AlignedFace};
use crate::detect::{Face, FaceDetector};
use crate::paste::{self, PasteFace};
use crate::photo::{self, OutputFormat, Photo, ReadLimits};
use crate::restorer::FaceRestorer;
use image::RgbImage;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::Device;

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub out_dir: PathBuf,
    /// Faces per restorer call for [`restore_photos`] (halved automatically when memory runs out).
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
    /// The run was cancelled before this photo was finished; nothing was written for it.
    Cancelled,
}

/// Progress reports, in the order things happen.
#[derive(Debug)]
pub enum Event<'a> {
    /// A photo was read and searched.
    FacesFound { input: &'a Path, photo: &'a RgbImage, faces: &'a [Face] },
    /// A restorer call finished.
    BatchDone { faces: usize, failed: usize, seconds: f64 },
    /// A batch ran out of memory and is retried with fewer faces.
    OomRecovered { from: usize, to: usize },
    /// A face that ran out of memory alone on the GPU was restored on the CPU instead.
    CpuFallback { input: &'a Path, face: usize },
    FaceFailed { input: &'a Path, face: usize, error: &'a str },
    PhotoDone { input: &'a Path, outcome: &'a Outcome, result: Option<&'a RgbImage> },
}

/// Chooses how many faces go into each restorer call, and reacts to running out of memory.
pub trait BatchSizer {
    /// Faces for the next call (at least 1).
    fn next(&mut self) -> usize;
    /// A call of `n` faces succeeded.
    fn succeeded(&mut self, n: usize);
    /// A call of `n > 1` faces ran out of memory: the size to retry the same faces with, or `None`
    /// to report them failed.
    fn out_of_memory(&mut self, n: usize) -> Option<usize>;
}

/// A fixed size that halves for the retry when memory runs out (and stays halved).
#[derive(Debug, Clone, Copy)]
pub struct SplitOnOom(pub usize);

impl BatchSizer for SplitOnOom {
    fn next(&mut self) -> usize {
        self.0.max(1)
    }
    fn succeeded(&mut self, _: usize) {}
    fn out_of_memory(&mut self, n: usize) -> Option<usize> {
        self.0 = (n / 2).max(1);
        Some(self.0)
    }
}

/// A fixed size that never adapts: what tools without memory handling do (benchmark baseline).
#[derive(Debug, Clone, Copy)]
pub struct NoRetry(pub usize);

impl BatchSizer for NoRetry {
    fn next(&mut self) -> usize {
        self.0.max(1)
    }
    fn succeeded(&mut self, _: usize) {}
    fn out_of_memory(&mut self, _: usize) -> Option<usize> {
        None
    }
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

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub photos_restored: usize,
    pub photos_without_faces: usize,
    pub photos_already_done: usize,
    pub photos_failed: usize,
    pub photos_cancelled: usize,
    pub faces_restored: usize,
    pub faces_failed: usize,
    pub oom_events: usize,
    pub cpu_fallbacks: usize,
    pub times: StageTimes,
}

impl Summary {
    pub fn any_failed(&self) -> bool {
        self.photos_failed > 0 || self.faces_failed > 0 || self.photos_cancelled > 0
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
            Outcome::Cancelled => self.photos_cancelled += 1,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "photos restored {}, without faces {}, already done {}, failed {}",
            self.photos_restored, self.photos_without_faces, self.photos_already_done, self.photos_failed
        )?;
        if self.photos_cancelled > 0 {
            write!(f, ", cancelled {}", self.photos_cancelled)?;
        }
        write!(f, "; faces restored {}, failed {}", self.faces_restored, self.faces_failed)?;
        if self.oom_events > 0 || self.cpu_fallbacks > 0 {
            write!(f, "; out-of-memory recoveries {}, CPU fallbacks {}", self.oom_events, self.cpu_fallbacks)?;
        }
        Ok(())
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

/// Photos in flight. Photos are added one at a time; faces are restored in batches whose size a
/// [`BatchSizer`] chooses; photos complete as their last face comes back.
pub struct Pipeline<'a> {
    detector: &'a dyn FaceDetector,
    restorer: &'a dyn FaceRestorer,
    /// Restores a face that runs out of memory alone on the GPU (a CPU copy of the model).
    fallback: Option<&'a dyn FaceRestorer>,
    options: PipelineOptions,
    summary: Summary,
    pending: Vec<Option<Pending>>,
    /// (index into `pending`, face index) in arrival order.
    queue: VecDeque<(usize, usize)>,
    mask: Vec<f32>,
    namer: crate::inputs::OutputNamer,
}

impl<'a> Pipeline<'a> {
    pub fn new(detector: &'a dyn FaceDetector, restorer: &'a dyn FaceRestorer, options: PipelineOptions) -> Self {
        let namer = crate::inputs::OutputNamer::new(&options.out_dir, options.format.extension());
        Pipeline {
            detector,
            restorer,
            fallback: None,
            mask: paste::crop_mask(restorer.size()),
            options,
            summary: Summary::default(),
            pending: Vec::new(),
            queue: VecDeque::new(),
            namer,
        }
    }

    pub fn with_fallback(mut self, fallback: Option<&'a dyn FaceRestorer>) -> Self {
        self.fallback = fallback;
        self
    }

    pub fn options_mut(&mut self) -> &mut PipelineOptions {
        &mut self.options
    }

    /// Photos read and waiting for some of their faces.
    pub fn pending_photos(&self) -> usize {
        self.pending.iter().filter(|p| p.is_some()).count()
    }

    /// Faces waiting for the restorer.
    pub fn queued_faces(&self) -> usize {
        self.queue.len()
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn into_summary(self) -> Summary {
        self.summary
    }

    /// Reads, detects and aligns one photo and queues its faces (or finishes it at once when it
    /// fails, has no faces, or was done before).
    pub fn add(&mut self, input: &Path, on_event: &mut dyn FnMut(&Event)) {
        let output = self.namer.name(input);
        if let Some(outcome) = self.start(input, output, on_event) {
            self.finish(input, outcome, None, on_event);
        }
    }

    fn start(&mut self, input: &Path, output: PathBuf, on_event: &mut dyn FnMut(&Event)) -> Option<Outcome> {
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
        on_event(&Event::FacesFound { input, photo: &photo.pixels, faces: &faces });
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
        self.pending.push(Some(Pending {
            input: input.into(),
            output,
            restored: vec![None; faces.len()],
            waiting: faces.len(),
            photo,
            faces,
            aligned,
        }));
        None
    }

    /// Restores the next batch of queued faces (as many as `sizer` asks for), retrying smaller
    /// batches on out-of-memory, and completes the photos whose faces are all back.
    pub fn restore_next(&mut self, sizer: &mut dyn BatchSizer, on_event: &mut dyn FnMut(&Event)) {
        let n = sizer.next().max(1).min(self.queue.len());
        if n == 0 {
            return;
        }
        let batch: Vec<(usize, usize)> = self.queue.drain(..n).collect();
        let t = Instant::now();
        let results = self.run_batch(&batch, sizer, on_event);
        self.summary.times.restore += t.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        on_event(&Event::BatchDone { faces: n, failed, seconds: t.elapsed().as_secs_f64() });
        let mut completed = Vec::new();
        for ((p, f), result) in batch.into_iter().zip(results) {
            let pending = self.pending[p].as_mut().expect("queued faces belong to pending photos");
            if let Err(error) = &result {
                on_event(&Event::FaceFailed { input: &pending.input, face: f, error });
            }
            pending.restored[f] = Some(result);
            pending.waiting -= 1;
            if pending.waiting == 0 {
                completed.push(p);
            }
        }
        for p in completed {
            let pending = self.pending[p].take().expect("completed once");
            self.complete(pending, on_event);
        }
    }

    /// Runs the faces of `batch`, shrinking the call size on out-of-memory as `sizer` says; a
    /// single face that still does not fit goes to the fallback restorer when there is one.
    fn run_batch(
        &mut self,
        batch: &[(usize, usize)],
        sizer: &mut dyn BatchSizer,
        on_event: &mut dyn FnMut(&Event),
    ) -> Vec<Result<RgbImage, String>> {
        let crops: Vec<&RgbImage> =
            batch.iter().map(|&(p, f)| &self.pending[p].as_ref().expect("pending").aligned[f].crop).collect();
        let mut out = Vec::with_capacity(crops.len());
        let mut size = crops.len();
        let mut i = 0;
        while i < crops.len() {
            let k = size.min(crops.len() - i);
            match self.restorer.restore_batch(&crops[i..i + k]) {
                Ok(faces) => {
                    sizer.succeeded(k);
                    out.extend(faces.into_iter().map(Ok));
                    i += k;
                }
                Err(e) if e.is_oom() => {
                    self.restorer.release_cache();
                    self.summary.oom_events += 1;
                    if k > 1 {
                        if let Some(smaller) = sizer.out_of_memory(k).filter(|&s| s < k) {
                            on_event(&Event::OomRecovered { from: k, to: smaller.max(1) });
                            size = smaller.max(1);
                            continue;
                        }
                        out.extend((0..k).map(|_| Err(e.to_string())));
                        i += k;
                        continue;
                    }
                    let (p, f) = batch[i];
                    let result = match self.fallback {
                        Some(cpu) => match cpu.restore_batch(&crops[i..i + 1]) {
                            Ok(mut face) => {
                                self.summary.cpu_fallbacks += 1;
                                on_event(&Event::CpuFallback { input: &self.pending[p].as_ref().expect("pending").input, face: f });
                                Ok(face.remove(0))
                            }
                            Err(cpu_err) => Err(format!("{e}; on the CPU too: {cpu_err}")),
                        },
                        None => Err(e.to_string()),
                    };
                    out.push(result);
                    i += 1;
                }
                Err(e) => {
                    out.extend((0..k).map(|_| Err(e.to_string())));
                    i += k;
                }
            }
        }
        out
    }

    /// Pastes and writes a photo whose faces are all back.
    fn complete(&mut self, pending: Pending, on_event: &mut dyn FnMut(&Event)) {
        let restored: Vec<Result<RgbImage, String>> = pending.restored.into_iter().map(|r| r.expect("all faces back")).collect();
        let errors: Vec<String> =
            restored.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| format!("face {i}: {e}"))).collect();
        if !errors.is_empty() {
            let error = format!("{} of {} faces could not be restored ({})", errors.len(), restored.len(), errors.join("; "));
            let outcome = Outcome::Failed { error, faces_failed: errors.len() };
            return self.finish(&pending.input, outcome, None, on_event);
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
        let result = paste::paste_faces(&pending.photo.pixels, &paste_faces, self.options.strength, &self.mask);
        self.summary.times.paste += t.elapsed();

        let t = Instant::now();
        let written = write(&pending.output, &result, &pending.photo, self.options.format).and_then(|()| {
            if self.options.save_faces { save_faces(&pending.output, &pending.aligned, &faces) } else { Ok(()) }
        });
        self.summary.times.encode += t.elapsed();
        let outcome = match written {
            Ok(()) => Outcome::Restored { output: pending.output.clone(), faces: faces.len() },
            Err(error) => Outcome::Failed { error, faces_failed: 0 },
        };
        let shown = matches!(outcome, Outcome::Restored { .. }).then_some(&result);
        self.finish(&pending.input, outcome, shown, on_event);
    }

    /// Drops every photo still in flight (nothing is written for them) and reports them cancelled.
    pub fn cancel(&mut self, on_event: &mut dyn FnMut(&Event)) {
        self.queue.clear();
        let pending: Vec<Pending> = self.pending.iter_mut().filter_map(Option::take).collect();
        for p in pending {
            self.finish(&p.input, Outcome::Cancelled, None, on_event);
        }
    }

    fn finish(&mut self, input: &Path, outcome: Outcome, result: Option<&RgbImage>, on_event: &mut dyn FnMut(&Event)) {
        self.summary.count(&outcome);
        on_event(&Event::PhotoDone { input, outcome: &outcome, result });
    }
}

/// Restores `inputs` (photo files) into `options.out_dir` with `options.batch` faces per call,
/// halving the call on out-of-memory. Reports through `on_event`.
pub fn restore_photos(
    inputs: &[PathBuf],
    detector: &dyn FaceDetector,
    restorer: &dyn FaceRestorer,
    options: &PipelineOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Summary {
    crate::paths::remove_stale_partials(&options.out_dir);
    let mut sizer = SplitOnOom(options.batch.max(1));
    let mut pipeline = Pipeline::new(detector, restorer, options.clone());
    for input in inputs {
        pipeline.add(input, on_event);
        while pipeline.queued_faces() >= sizer.next() {
            pipeline.restore_next(&mut sizer, on_event);
        }
    }
    while pipeline.queued_faces() > 0 {
        pipeline.restore_next(&mut sizer, on_event);
    }
    pipeline.into_summary()
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
