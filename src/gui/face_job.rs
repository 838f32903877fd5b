//! The work behind the face tools (colorize or inpaint one face of a photo), done on a helper
//! thread: the face is aligned as a run aligns it, written beside the outputs, and handed to the
//! window's engine as a short run of its own in aligned mode with the task's checkpoint — the same
//! path as `restore --aligned --task colorize|inpaint`, so the window adds no second way of running
//! GPEN and no second owner of the device (the job waits for the queue's run to end).

use crate::archive::Photo;
use crate::config::RunConfig;
use crate::detect::Face;
use crate::engine::driver::run_aside;
use crate::engine::worker::{Command, EngineEvent};
use crate::error::{ConfigError, SetupError};
use crate::photo::{OutputFormat, ReadLimits, read_photo};
use crate::pipeline::Outcome;
use crate::weights::Task;
use crossbeam_channel::Sender;
use image::{GrayImage, RgbImage};
use std::path::{Path, PathBuf};

/// Where the face tools keep their crops, masks and results: a folder of the output folder.
pub const FACE_TOOLS_DIR: &str = "face-tools";

/// One face to colorize or inpaint.
#[derive(Debug, Clone)]
pub struct FaceJob {
    pub photo: PathBuf,
    pub face_index: usize,
    pub crop: RgbImage,
    /// White where the face is to be filled in (inpainting only).
    pub mask: Option<GrayImage>,
    /// The user's settings; the job takes device, precision and output folder from them.
    pub settings: RunConfig,
    pub task: Task,
    pub weights: PathBuf,
}

/// Why a job the window runs aside on its engine (a face tool's, model B's) did not give a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FaceToolError {
    /// The engine could not run the task (its checkpoint, the device, the settings).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The checkpoint was not made for this task.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The task's checkpoint cannot be read.
    #[error("{0}")]
    Checkpoint(String),
    /// The photo, the crop, its mask or the result could not be read or written.
    #[error("{0}")]
    File(String),
    /// The engine ran but gave no result for the face (its own reason).
    #[error("{0}")]
    Run(String),
}

/// The face as a run aligns it, at the size of the task's model (read from its tensor shapes).
pub fn align_crop(photo: &Path, face: &Face, weights: &Path) -> Result<RgbImage, FaceToolError> {
    let shapes = crate::checkpoint::read_shapes(weights).map_err(|e| FaceToolError::Checkpoint(e.to_string()))?;
    let size = crate::restore::checkpoint::infer_config(&shapes).map_err(|e| FaceToolError::Checkpoint(e.to_string()))?.size;
    let pixels = read_photo(photo, &ReadLimits::default()).map_err(|e| FaceToolError::File(e.to_string()))?.pixels;
    let aligned =
        crate::align::align_face(&pixels, &face.landmarks, size as u32, tch::Device::Cpu).map_err(|e| FaceToolError::Run(e.to_string()))?;
    Ok(aligned.crop)
}

/// `<photo stem>_faceNN`: the crop's file stem (and so its result's).
pub fn crop_stem(photo: &Path, face_index: usize) -> String {
    let stem = photo.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "photo".into());
    format!("{stem}_face{:02}", face_index + 1)
}

/// Writes the crop (and the inpainting mask as `<crop>_mask.png`, which the aligned mode reads)
/// into `<output>/face-tools/`, runs the task on it and returns the result's path and pixels
/// (`<output>/face-tools/<task>/<crop>.png`). The task runs on the engine behind `engine`.
pub fn run(job: &FaceJob, engine: &Sender<Command>) -> Result<(PathBuf, RgbImage), FaceToolError> {
    let dir = job.settings.out_dir.join(FACE_TOOLS_DIR);
    let stem = crop_stem(&job.photo, job.face_index);
    let crop_path = dir.join(format!("{stem}.png"));
    let mask_path = dir.join(format!("{stem}_mask.png"));
    let write = |path: &Path, image: &RgbImage| {
        crate::photo::write_photo(path, image, OutputFormat::Png, &Default::default()).map_err(|e| FaceToolError::File(e.to_string()))
    };
    std::fs::create_dir_all(&dir).map_err(|e| FaceToolError::File(format!("cannot create {}: {e}", dir.display())))?;
    write(&crop_path, &job.crop)?;
    match &job.mask {
        Some(mask) => {
            let rgb = image::DynamicImage::ImageLuma8(mask.clone()).to_rgb8();
            write(&mask_path, &rgb)?;
        }
        // A mask left from an earlier inpainting of this face must not mark this run's crop.
        None => {
            let _ = std::fs::remove_file(&mask_path);
        }
    }
    let config = RunConfig {
        weights: job.weights.clone(),
        out_dir: dir.join(job.task.to_string()),
        format: OutputFormat::Png,
        aligned: true,
        task: Some(job.task),
        overwrite: true,
        save_faces: false,
        upscale: None,
        given_faces: None,
        preview_side: 0,
        ..job.settings.clone()
    };
    config.check_task()?;
    let output = run_one(engine, config, Photo::direct(crop_path))?.output;
    let pixels =
        image::open(&output).map_err(|e| FaceToolError::File(format!("cannot read the result {}: {e}", output.display())))?.to_rgb8();
    Ok((output, pixels))
}

/// What one photo's run aside on the window's engine wrote.
#[derive(Debug, Clone)]
pub struct AsideResult {
    pub output: PathBuf,
    /// The result's preview, when the run makes previews.
    pub after: Option<crate::engine::worker::Preview>,
    /// Each face's identity, as the run measured it.
    pub identity: Vec<Option<crate::identity::FaceIdentity>>,
}

/// One photo through the window's engine as a run of its own (after whatever it runs now); what
/// it wrote, or the engine's reason. The face tools and model B run through it.
pub fn run_one(engine: &Sender<Command>, config: RunConfig, photo: Photo) -> Result<AsideResult, FaceToolError> {
    let mut result = Err(FaceToolError::Run("the run ended without a result".into()));
    run_aside(engine, config, vec![photo], |event| match event {
        EngineEvent::PhotoEnded { outcome: Outcome::Restored { output, identity, .. }, after, .. } => {
            result = Ok(AsideResult { output: output.clone(), after: after.clone(), identity: identity.clone() })
        }
        EngineEvent::PhotoEnded { outcome: Outcome::Failed { error, .. }, .. } => result = Err(FaceToolError::Run(error.to_string())),
        EngineEvent::PhotoEnded { outcome: Outcome::NoFaces { .. }, .. } => result = Err(FaceToolError::Run("no faces found".into())),
        EngineEvent::FaceFailed { error, .. } => result = Err(FaceToolError::Run(error.clone())),
        EngineEvent::ModelError(error) => result = Err(error.clone().into()),
        _ => {}
    });
    result
}
