//! The stages of a photo, as plain functions of their inputs, so they run the same on the engine's
//! thread and on stage workers: [`start`] (read, then [`search`]: detect → align) before the GPU,
//! [`upscale`] between the two when the run upscales (on the GPU stage's thread, the one owner of
//! the device and of every core), and [`finish`] (paste → encode) after it. Aligned mode (GPEN's `--aligned`) swaps the warp for a
//! resize and the paste-back for writing the restored crop itself.

use super::items::{FaceFailure, RestoredFace};
use super::outcome::{MaskFileError, PhotoFailure};
use super::{Outcome, PhotoId, StageTimes};
use crate::align::{self, Affine2, AlignedFace};
use crate::detect::{Face, FaceDetector};
use crate::error::Interrupt;
use crate::photo::{self, OutputFormat, Photo, PhotoMeta, ReadLimits};
use crate::pipeline::paste::{self, PasteFace};
use crate::upscale::{self, PhotoUpscaler};
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::Device;

/// A downscaled RGB image for display.
#[derive(Debug, Clone)]
pub struct Preview {
    pub image: RgbImage,
    /// Preview pixels per pixel of the input photo (also for previews of an upscaled photo): the
    /// unit faces are reported in.
    pub scale: f32,
}

/// Downscales for display so the longer side is at most `side`; `None` when previews are off.
pub fn preview(image: &RgbImage, side: u32) -> Option<Preview> {
    if side == 0 {
        return None;
    }
    let (w, h) = image.dimensions();
    let longest = w.max(h).max(1);
    if longest <= side {
        return Some(Preview { image: image.clone(), scale: 1.0 });
    }
    let scale = side as f32 / longest as f32;
    let (pw, ph) = (((w as f32 * scale).round() as u32).max(1), ((h as f32 * scale).round() as u32).max(1));
    Some(Preview { image: image::imageops::thumbnail(image, pw, ph), scale })
}

/// What every stage of a run shares; fixed for the run.
#[derive(Debug, Clone)]
pub struct StageContext {
    /// Side of the restorer's square crops.
    pub size: u32,
    /// Where alignment warps run (the restorer's device).
    pub device: Device,
    pub strength: f32,
    pub format: OutputFormat,
    pub save_faces: bool,
    pub overwrite: bool,
    pub aligned: bool,
    pub limits: ReadLimits,
    pub preview_side: u32,
    /// The feathered-rectangle mask of the crop size, computed once per run: the paste mask of
    /// faces the parser gave none (or of every face without a parser).
    pub mask: Vec<f32>,
    /// Faces the user gave for some photos; those photos are not detected.
    pub given_faces: Option<std::sync::Arc<crate::config::GivenFaces>>,
    /// The authors' SR output sizes (`--gpen-exact`).
    pub gpen_exact: bool,
    /// How much larger than its input a photo comes out (`--upscale`; 1 without).
    pub upscale: f32,
    /// The run has an upscaler: photos go through [`upscale`] between reading and searching.
    pub upscales: bool,
    /// The run only upscales: the upscaled photo is the result, searched for nothing.
    pub upscale_only: bool,
    /// What is done with aligned crops (restore, colorize, inpaint, seg2face).
    pub task: crate::weights::Task,
    /// What results say was done to them; `None` with `--strip-metadata`, which also leaves out
    /// the original's EXIF and XMP.
    pub history: Option<super::history::RunHistory>,
}

/// What a read + detect + align worker holds: its detector (none when the run only upscales;
/// tensors are not shared between threads).
pub struct FrontTools {
    pub detector: Option<Box<dyn FaceDetector + Send>>,
}

impl FrontTools {
    pub fn detecting(detector: Box<dyn FaceDetector + Send>) -> Self {
        FrontTools { detector: Some(detector) }
    }
}

impl StageContext {
    /// `upscales`: the run has an upscaler (the engine loaded one).
    pub fn new(config: &crate::config::ResolvedRun, size: u32, device: Device, upscales: bool) -> Self {
        StageContext {
            size,
            device,
            strength: config.strength,
            format: config.output_format(),
            save_faces: config.save_faces && !config.aligned,
            overwrite: config.overwrite,
            aligned: config.aligned,
            limits: config.read_limits(),
            preview_side: config.preview_side,
            mask: if config.aligned { Vec::new() } else { paste::crop_mask(size) },
            given_faces: if config.aligned { None } else { config.given_faces.clone() },
            gpen_exact: config.gpen_exact,
            upscale: if config.aligned { 1.0 } else { config.upscale.unwrap_or(1) as f32 },
            upscales,
            upscale_only: config.upscale_only,
            task: config.run_task(),
            history: (!config.strip_metadata).then(|| super::history::RunHistory::of(config)),
        }
    }

    /// The metadata of a result of `photo` of `width` × `height` with `faces` faces restored.
    fn meta(&self, photo: &photo::Photo, width: u32, height: u32, faces: usize) -> PhotoMeta {
        let meta = photo.meta_for(width, height);
        match &self.history {
            Some(history) => PhotoMeta { history: Some(history.entry(faces)), ..meta },
            None => PhotoMeta { exif: None, xmp: None, history: None, ..meta },
        }
    }
}

/// One photo to process and where its result goes.
#[derive(Debug, Clone)]
pub struct PhotoJob {
    pub id: PhotoId,
    pub input: PathBuf,
    pub output: PathBuf,
    /// The SR tiles planned for this photo (`None`: whole, or no upscaling).
    pub tiles: Option<crate::upscale::Tiles>,
}

/// A photo whose faces are ready for the GPU.
#[derive(Debug)]
pub struct Prepared {
    pub job: PhotoJob,
    /// The photo the faces were found on and cut from (with SR: the input resized bilinearly to
    /// the upscaled size, as GPEN does).
    pub photo: Photo,
    /// With SR, the upscaled photo the faces are pasted into.
    pub background: Option<RgbImage>,
    pub faces: Vec<Face>,
    pub aligned: Vec<AlignedFace>,
    /// Each face's own strength where one was given (`restore --faces`, the window), else the run's.
    pub strengths: Vec<f32>,
}

/// A photo read, waiting for the run's upscaler.
#[derive(Debug)]
pub struct ReadPhoto {
    pub job: PhotoJob,
    pub photo: Photo,
}

/// A photo whose faces are to be searched: read, and upscaled where the run upscales.
#[derive(Debug)]
pub struct ToSearch {
    pub job: PhotoJob,
    /// The photo to search and cut faces from (with SR: the input, which [`search`] resizes
    /// bilinearly to the upscaled size; a run that only upscales: the upscaled photo, its result).
    pub photo: Photo,
    /// With SR, the upscaled photo the faces are pasted into.
    pub background: Option<RgbImage>,
    /// Photo pixels per input pixel (faces are given and reported in the input's).
    pub face_scale: f32,
}

/// What a read + detect + align worker is handed.
#[derive(Debug)]
pub enum FrontJob {
    /// A photo that starts: read it, then search it unless the run upscales it first.
    Start(PhotoJob),
    /// A photo back from the upscaler: search it.
    Search(Box<ToSearch>),
}

impl FrontJob {
    pub fn job(&self) -> &PhotoJob {
        match self {
            FrontJob::Start(job) => job,
            FrontJob::Search(s) => &s.job,
        }
    }
}

/// What [`start`] and [`search`] end with.
#[derive(Debug)]
pub enum Front {
    /// Faces to restore (boxed: a photo with its pixels and metadata is large beside an ending).
    Ready(Box<Prepared>),
    /// Read; the run's upscaler comes next (on the GPU stage), then [`search`].
    Upscale(Box<ReadPhoto>),
    /// The photo ended before the GPU (failed, no faces, already done, cancelled).
    Done(PhotoJob, Outcome),
}

/// The faces a photo was found to have, with its preview for the window.
#[derive(Debug, Clone)]
pub struct Found {
    pub faces: Vec<Face>,
    pub before: Option<Preview>,
}

#[derive(Debug)]
pub struct FrontReport {
    pub front: Front,
    /// Set once detection ran.
    pub found: Option<Found>,
    pub times: StageTimes,
}

/// How a photo's upscaling recovered from running out of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrRecovery {
    pub oom_events: usize,
    /// The tiles it finished in (`None`: whole, after freeing the cache).
    pub tiles: Option<crate::upscale::Tiles>,
}

impl FrontReport {
    pub fn id(&self) -> PhotoId {
        match &self.front {
            Front::Ready(p) => p.job.id,
            Front::Upscale(r) => r.job.id,
            Front::Done(job, _) => job.id,
        }
    }

    /// The report of a photo that ended before anything was done with it.
    pub fn ended(job: PhotoJob, outcome: Outcome) -> Self {
        FrontReport { front: Front::Done(job, outcome), found: None, times: StageTimes::default() }
    }

    /// The report of a photo skipped because the run was cancelled before it started.
    pub fn cancelled(job: PhotoJob) -> Self {
        Self::ended(job, Outcome::Cancelled)
    }
}

#[derive(Debug)]
pub struct BackReport {
    pub id: PhotoId,
    pub outcome: Outcome,
    /// The result's preview, for a restored photo.
    pub after: Option<Preview>,
    pub times: StageTimes,
}

/// Runs what a read + detect + align worker is handed.
pub fn front(job: FrontJob, tools: &FrontTools, ctx: &StageContext) -> FrontReport {
    match job {
        FrontJob::Start(job) => start(job, tools, ctx),
        FrontJob::Search(photo) => search(*photo, tools, ctx, StageTimes::default()),
    }
}

/// Reads one photo, then searches it ([`search`]) — or hands it to the upscaler first when the run
/// upscales; ends it early when its output exists or it cannot be read.
pub fn start(job: PhotoJob, tools: &FrontTools, ctx: &StageContext) -> FrontReport {
    let mut times = StageTimes::default();
    if crate::paths::same_file(&job.input, &job.output) {
        return FrontReport::ended(job, Outcome::Failed { error: PhotoFailure::WouldReplaceInput, faces_failed: 0 });
    }
    if job.output.exists() && !ctx.overwrite {
        let output = job.output.clone();
        return FrontReport::ended(job, Outcome::AlreadyDone { output });
    }
    let t = Instant::now();
    let photo = match photo::read_photo(&job.input, &ctx.limits) {
        Ok(p) => p,
        Err(e) => return FrontReport::ended(job, Outcome::Failed { error: PhotoFailure::Read(Arc::new(e)), faces_failed: 0 }),
    };
    times.decode += t.elapsed();
    if ctx.upscales {
        return FrontReport { front: Front::Upscale(Box::new(ReadPhoto { job, photo })), found: None, times };
    }
    search(ToSearch { job, photo, background: None, face_scale: 1.0 }, tools, ctx, times)
}

/// What [`upscale`] ends with.
#[derive(Debug)]
pub struct UpscaleReport {
    /// The photo to search, or how it ended.
    pub result: Result<Box<ToSearch>, (PhotoJob, Outcome)>,
    pub times: StageTimes,
    /// The upscaling ran out of memory and finished in smaller tiles.
    pub sr_recovery: Option<SrRecovery>,
}

impl UpscaleReport {
    /// The report of a photo that ended without being upscaled.
    pub fn ended(job: PhotoJob, outcome: Outcome) -> Self {
        UpscaleReport { result: Err((job, outcome)), times: StageTimes::default(), sr_recovery: None }
    }
}

/// Upscales a read photo with the run's upscaler (on the GPU stage's thread). GPEN's order with
/// SR: upscale, then search and cut the faces from the input resized bilinearly (OpenCV's 8-bit
/// resize) to the upscaled size, and paste them into the upscaled photo. `stop` is asked between
/// the upscaler's steps; when it says stop the photo ends [`Outcome::Cancelled`].
pub fn upscale(read: ReadPhoto, upscaler: &dyn PhotoUpscaler, ctx: &StageContext, stop: &mut Interrupt<'_>) -> UpscaleReport {
    let ReadPhoto { job, mut photo } = read;
    let mut times = StageTimes::default();
    let t = Instant::now();
    let done = upscale::upscale_with_retry(upscaler, &photo.pixels, job.tiles, ctx.gpen_exact, stop);
    times.upscale += t.elapsed();
    let done = match done {
        Ok(done) => done,
        Err(upscale::UpscaleError::Interrupted) => {
            return UpscaleReport { result: Err((job, Outcome::Cancelled)), times, sr_recovery: None };
        }
        Err(error) => {
            let outcome = Outcome::Failed { error: PhotoFailure::Upscale(Arc::new(error)), faces_failed: 0 };
            return UpscaleReport { result: Err((job, outcome)), times, sr_recovery: None };
        }
    };
    let sr_recovery = (done.oom_events > 0).then_some(SrRecovery { oom_events: done.oom_events, tiles: done.tiles });
    // The background is now upscaled from the 8-bit pixels: the result is 8-bit.
    photo.deep = None;
    let to_search = if ctx.upscale_only {
        // Only upscaling: the upscaled photo is the result, searched for nothing.
        photo.pixels = done.image;
        ToSearch { job, photo, background: None, face_scale: 1.0 }
    } else {
        // The input is resized to the upscaled size by the worker that searches it ([`search`]).
        ToSearch { job, photo, background: Some(done.image), face_scale: ctx.upscale }
    };
    UpscaleReport { result: Ok(Box::new(to_search)), times, sr_recovery }
}

/// Detects and aligns one photo (or ends it: it has no faces — then it is written here without
/// faces restored — or they cannot be found or aligned). `times` is what the photo took so far.
pub fn search(to_search: ToSearch, tools: &FrontTools, ctx: &StageContext, mut times: StageTimes) -> FrontReport {
    let ToSearch { job, mut photo, background, face_scale } = to_search;
    let done = |job, outcome, found, times| FrontReport { front: Front::Done(job, outcome), found, times };
    if let Some(upscaled) = background.as_ref().filter(|b| b.dimensions() != photo.pixels.dimensions()) {
        let t = Instant::now();
        photo.pixels = crate::imgproc::resize_linear_rgb(&photo.pixels, upscaled.width(), upscaled.height());
        times.upscale += t.elapsed();
    }
    let t = Instant::now();
    // Given faces are in the input's pixels; with SR they scale with the photo.
    let given = ctx.given_faces.as_ref().and_then(|g| g.get(&job.input)).map(|f| f.iter().map(|f| f.scaled(face_scale)).collect());
    // A run that only upscales has no detector: no faces.
    let search = || tools.detector.as_ref().map_or(Ok(Vec::new()), |d| d.detect(&photo.pixels));
    let faces = match given.map(Ok).unwrap_or_else(search) {
        Ok(f) => f,
        Err(e) => return done(job, Outcome::Failed { error: PhotoFailure::Detect(Arc::new(e)), faces_failed: 0 }, None, times),
    };
    times.detect += t.elapsed();
    // Reported in the input's pixels (what `--faces` and the window's face switches take back),
    // with the preview scaled to match, also when the faces were found on the upscaled photo.
    let before = preview(&photo.pixels, ctx.preview_side).map(|p| Preview { scale: p.scale * face_scale, ..p });
    let found = Some(Found { faces: faces.iter().map(|f| f.scaled(1.0 / face_scale)).collect(), before });
    if faces.is_empty() {
        let t = Instant::now();
        let image = background.as_ref().unwrap_or(&photo.pixels);
        // A 16-bit photo nobody changed is written from its own samples.
        let deep = photo.deep.as_ref().filter(|_| ctx.format.holds_16_bits()).map(|d| (&d.rgb, d.alpha.as_ref()));
        let written = write(&job.output, image, deep, &ctx.meta(&photo, image.width(), image.height(), 0), ctx.format);
        times.encode += t.elapsed();
        let outcome = match written {
            Ok(()) => Outcome::NoFaces { output: job.output.clone() },
            Err(error) => Outcome::Failed { error: PhotoFailure::Write(Arc::new(error)), faces_failed: 0 },
        };
        return done(job, outcome, found, times);
    }

    let t = Instant::now();
    let aligned = if ctx.aligned {
        task_input(&photo.pixels, &job.input, ctx.task).map(|input| vec![resized_crop(&input, ctx.size)]).map_err(PhotoFailure::TaskInput)
    } else {
        let landmarks: Vec<_> = faces.iter().map(|f| f.landmarks).collect();
        align::align_faces(&photo.pixels, &landmarks, ctx.size, ctx.device).map_err(|e| PhotoFailure::Align(Arc::new(e)))
    };
    times.align += t.elapsed();
    match aligned {
        Ok(aligned) => {
            let own = ctx.given_faces.as_ref().and_then(|g| g.strengths(&job.input));
            let strengths = (0..faces.len()).map(|i| own.and_then(|s| s.get(i).copied().flatten()).unwrap_or(ctx.strength)).collect();
            FrontReport { front: Front::Ready(Box::new(Prepared { job, photo, background, faces, aligned, strengths })), found, times }
        }
        Err(error) => {
            let faces_failed = faces.len();
            done(job, Outcome::Failed { error, faces_failed }, found, times)
        }
    }
}

/// An aligned crop as GPEN's aligned mode takes it: the whole image resized to the model size
/// (`FaceGAN.process`'s `cv2.resize`, OpenCV's 8-bit bilinear).
fn resized_crop(image: &RgbImage, size: u32) -> AlignedFace {
    let crop = if image.dimensions() == (size, size) { image.clone() } else { crate::imgproc::resize_linear_rgb(image, size, size) };
    let (sx, sy) = (size as f64 / image.width() as f64, size as f64 / image.height() as f64);
    let tfm = Affine2 { m: [[sx, 0.0, 0.0], [0.0, sy, 0.0]] };
    let tfm_inv = Affine2 { m: [[1.0 / sx, 0.0, 0.0], [0.0, 1.0 / sy, 0.0]] };
    AlignedFace { crop, tfm, tfm_inv }
}

/// Pastes the restored faces back and writes the photo; a photo with a face that could not be
/// restored is not written and fails, naming each lost face.
pub fn finish(prepared: Prepared, restored: Vec<Result<RestoredFace, FaceFailure>>, ctx: &StageContext) -> BackReport {
    let mut times = StageTimes::default();
    let id = prepared.job.id;
    let lost: Vec<(usize, FaceFailure)> =
        restored.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.clone()))).collect();
    if !lost.is_empty() {
        let faces_failed = lost.len();
        let outcome = Outcome::Failed { error: PhotoFailure::FacesLost { total: restored.len(), lost }, faces_failed };
        return BackReport { id, outcome, after: None, times };
    }
    let restored: Vec<RestoredFace> = restored.into_iter().map(Result::unwrap).collect();
    let output = &prepared.job.output;

    let t = Instant::now();
    // A 16-bit photo's result is composited from its own samples where the format keeps them.
    let mut deep_result = None;
    let result = if ctx.aligned {
        task_output(&prepared.photo.pixels, &restored[0].image, ctx.task)
    } else {
        let paste_faces: Vec<PasteFace> = restored
            .iter()
            .zip(&prepared.aligned)
            .zip(&prepared.faces)
            .zip(&prepared.strengths)
            .map(|(((restored, aligned), face), &asked)| PasteFace {
                restored: &restored.image,
                aligned: &aligned.crop,
                tfm: aligned.tfm,
                box_side: face.width().min(face.height()),
                mask: restored.mask.as_deref().unwrap_or(&ctx.mask),
                // The guard's strength when it measured the face, else the face's own or the run's.
                strength: restored.identity.map_or(asked, |i| i.strength),
            })
            .collect();
        let base = prepared.background.as_ref().unwrap_or(&prepared.photo.pixels);
        let composite = paste::composite(base.width(), base.height(), &paste_faces);
        if let Some(deep) = prepared.photo.deep.as_ref().filter(|_| ctx.format.holds_16_bits()) {
            deep_result = Some((paste::blend16(&deep.rgb, &composite), deep.alpha.as_ref()));
        }
        paste::blend(base, &composite)
    };
    let identity: Vec<Option<crate::identity::FaceIdentity>> = restored.iter().map(|r| r.identity).collect();
    let faces: Vec<RgbImage> = restored.into_iter().map(|r| r.image).collect();
    times.paste += t.elapsed();

    let t = Instant::now();
    // Aligned crops carry no metadata worth keeping: the result is a new face image.
    let meta = if ctx.aligned { PhotoMeta::default() } else { ctx.meta(&prepared.photo, result.width(), result.height(), faces.len()) };
    let deep = deep_result.as_ref().map(|(rgb, alpha)| (rgb, *alpha));
    let written = write(output, &result, deep, &meta, ctx.format)
        .and_then(|()| if ctx.save_faces { save_faces(output, &prepared.aligned, &faces, &identity) } else { Ok(()) });
    times.encode += t.elapsed();
    match written {
        Ok(()) => {
            // Previews map the input's pixels (in which faces are reported) to the preview's.
            let scale = if prepared.background.is_some() { ctx.upscale } else { 1.0 };
            let after = preview(&result, ctx.preview_side).map(|p| Preview { scale: p.scale * scale, ..p });
            BackReport { id, outcome: Outcome::Restored { output: output.clone(), faces: faces.len(), identity }, after, times }
        }
        Err(error) => {
            BackReport { id, outcome: Outcome::Failed { error: PhotoFailure::Write(Arc::new(error)), faces_failed: 0 }, after: None, times }
        }
    }
}

/// What the generator gets for an aligned crop of `task`: a colorization model the crop in grey
/// (what it was trained on); an inpainting model the crop with the region to fill painted white
/// (GPEN's brush strokes), from `NAME_mask.png` beside the input (white = fill) when there is one,
/// else the crop as given (already marked).
fn task_input(image: &RgbImage, input: &Path, task: crate::weights::Task) -> Result<RgbImage, MaskFileError> {
    use crate::weights::Task;
    match task {
        Task::Colorize => Ok(crate::imgproc::grey(image)),
        Task::Inpaint => {
            let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mask_path = input.with_file_name(format!("{stem}_mask.png"));
            if !mask_path.is_file() {
                return Ok(image.clone());
            }
            let mask = image::open(&mask_path)
                .map_err(|e| MaskFileError::Unreadable { path: mask_path.clone(), reason: e.to_string() })?
                .to_luma8();
            if mask.dimensions() != image.dimensions() {
                return Err(MaskFileError::WrongSize { path: mask_path, mask: mask.dimensions(), face: image.dimensions() });
            }
            let mut marked = image.clone();
            for (p, m) in marked.pixels_mut().zip(mask.pixels()) {
                if m[0] > 127 {
                    *p = image::Rgb([255, 255, 255]);
                }
            }
            Ok(marked)
        }
        Task::Restore | Task::Seg2Face => Ok(image.clone()),
    }
}

/// The written result of an aligned crop: the generator's output, except that a colorization of a
/// crop of another size than the model's is resized back and keeps the input's luminance, as GPEN's
/// `FaceColorization.post_process` does.
fn task_output(input: &RgbImage, out: &RgbImage, task: crate::weights::Task) -> RgbImage {
    if task != crate::weights::Task::Colorize || input.dimensions() == out.dimensions() {
        return out.clone();
    }
    let resized = crate::imgproc::resize_linear_rgb(out, input.width(), input.height());
    crate::imgproc::keep_luminance(input, &resized)
}

/// Writes a result: a 16-bit photo's own samples (`deep`) when there are any, else `pixels`.
fn write(
    output: &Path,
    pixels: &RgbImage,
    deep: Option<(&photo::Rgb16Image, Option<&photo::Gray16Image>)>,
    meta: &PhotoMeta,
    format: OutputFormat,
) -> Result<(), photo::PhotoError> {
    match deep {
        Some((rgb, alpha)) => photo::write_photo16(output, rgb, alpha, format, meta),
        None => photo::write_photo(output, pixels, format, meta),
    }
}

/// Each face as `NAME_faceNN.png` (aligned input | restored) and, when identities were measured,
/// `NAME_faces.json` beside them: each face's file and identity (GPEN's --save_face, and more).
fn save_faces(
    output: &Path,
    aligned: &[AlignedFace],
    restored: &[RgbImage],
    identity: &[Option<crate::identity::FaceIdentity>],
) -> Result<(), photo::PhotoError> {
    #[derive(serde::Serialize)]
    struct SavedFace<'a> {
        file: &'a str,
        identity: Option<crate::identity::FaceIdentity>,
    }
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut names = Vec::new();
    for (i, (a, r)) in aligned.iter().zip(restored).enumerate() {
        let s = a.crop.width();
        let mut pair = RgbImage::new(2 * s, s);
        image::imageops::replace(&mut pair, &a.crop, 0, 0);
        image::imageops::replace(&mut pair, r, s as i64, 0);
        let name = crate::paths::fit_file_name("", &stem, &format!("_face{i:02}.png"));
        photo::write_photo(&output.with_file_name(&name), &pair, OutputFormat::Png, &Default::default())?;
        names.push(name);
    }
    if identity.iter().any(Option::is_some) {
        let faces: Vec<SavedFace> = names.iter().zip(identity).map(|(n, i)| SavedFace { file: n, identity: *i }).collect();
        let path = output.with_file_name(crate::paths::fit_file_name("", &stem, "_faces.json"));
        let json = serde_json::to_vec_pretty(&faces).expect("identities serialize");
        crate::paths::write_atomically(&path, |tmp| std::fs::write(tmp, &json))
            .map_err(|source| photo::PhotoError::Io { path: path.clone(), source })?;
    }
    Ok(())
}
