//! The window's A | B comparison: the selected photo restored again by a second generator (B),
//! with the faces of the first (so both restore the same faces, each at its own strength), on the
//! window's engine as a short run of its own — the same run as `restore --compare-with B`, into the
//! same folder (`OUTDIR/compare-<B>/`).

use crate::archive::Photo;
use crate::config::{GivenFaces, RunConfig};
use crate::engine::worker::{Command, Preview};
use crate::gui::face_job::{AsideResult, FaceToolError, run_one};
use crate::identity::FaceIdentity;
use crossbeam_channel::Sender;
use std::path::PathBuf;

/// One photo to restore with model B.
#[derive(Debug, Clone)]
pub struct CompareJob {
    pub photo: Photo,
    /// The faces model A restored (with their own strengths), given to B as they are.
    pub faces: GivenFaces,
    /// The user's settings; B's run takes everything but the weights and folder from them.
    pub settings: RunConfig,
    pub weights_b: PathBuf,
}

/// Model B's result of a photo.
#[derive(Debug, Clone)]
pub struct CompareResult {
    pub weights: PathBuf,
    pub output: PathBuf,
    pub after: Option<Preview>,
    /// Each face's identity under B (as the faces given, in order).
    pub identity: Vec<Option<FaceIdentity>>,
}

/// Restores the job's photo with B on the engine behind `engine`; B's result, or why there is none.
pub fn run(job: &CompareJob, engine: &Sender<Command>) -> Result<CompareResult, FaceToolError> {
    let out = crate::archive::inputs::compare_folder(&job.settings.out_dir, &job.weights_b);
    let config = RunConfig {
        weights: job.weights_b.clone(),
        out_dir: out,
        overwrite: true,
        given_faces: Some(std::sync::Arc::new(job.faces.clone())),
        ..job.settings.clone()
    };
    config.validate()?;
    let AsideResult { output, after, identity } = run_one(engine, config, job.photo.clone())?;
    Ok(CompareResult { weights: job.weights_b.clone(), output, after, identity })
}
