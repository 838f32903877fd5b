//! How a photo's journey ends: the one typed outcome every front end reads from the engine's
//! `PhotoEnded` event (the command line's messages and exit status, the report's records, the
//! window's rows, the benches' counts).

use std::path::PathBuf;
use std::sync::Arc;

use super::items::FaceFailure;
use crate::align::AlignError;
use crate::detect::DetectError;
use crate::photo::PhotoError;
use crate::upscale::UpscaleError;

/// How one photo ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Restored {
        output: PathBuf,
        faces: usize,
        /// Each face's identity as pasted (`None` for every face when it is not measured, or for a
        /// face whose measurement failed).
        identity: Vec<Option<crate::identity::FaceIdentity>>,
    },
    /// No face found: the photo is written unchanged (re-encoded, metadata kept).
    NoFaces { output: PathBuf },
    /// The result exists from an earlier run and `overwrite` is off.
    AlreadyDone { output: PathBuf },
    /// Nothing was written for this photo; a rerun tries it again.
    Failed {
        error: PhotoFailure,
        /// Faces found on it that were not written (all of them, or those the restorer lost).
        faces_failed: usize,
    },
    /// The run was cancelled before this photo was finished; nothing was written for it.
    Cancelled,
}

impl Outcome {
    /// The result written for the photo (now or by an earlier run); none when it failed or was cancelled.
    pub fn output(&self) -> Option<&PathBuf> {
        match self {
            Outcome::Restored { output, .. } | Outcome::NoFaces { output } | Outcome::AlreadyDone { output } => Some(output),
            Outcome::Failed { .. } | Outcome::Cancelled => None,
        }
    }
}

/// Why nothing was written for a photo, by the step that failed. The errors of the steps are shared
/// (`Arc`) because an event is cloned for every listener and most of them hold an `io::Error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PhotoFailure {
    #[error("the result would replace the input; choose another output folder")]
    WouldReplaceInput,
    /// The photo cannot be read (missing, unreadable, not an image, too large, ...).
    #[error("{0}")]
    Read(Arc<PhotoError>),
    #[error("{0}")]
    Upscale(Arc<UpscaleError>),
    #[error("face detection failed: {0}")]
    Detect(Arc<DetectError>),
    #[error("alignment failed: {0}")]
    Align(Arc<AlignError>),
    /// The inpainting mask beside an aligned crop is unusable.
    #[error("{0}")]
    TaskInput(MaskFileError),
    /// Faces the restorer could not restore, by their index in the photo; the photo is not written
    /// without them.
    #[error("{} of {total} faces could not be restored ({})", .lost.len(), describe_lost(.lost))]
    FacesLost { total: usize, lost: Vec<(usize, FaceFailure)> },
    /// The result (or a saved face) could not be written.
    #[error("{0}")]
    Write(Arc<PhotoError>),
    /// A bug: a stage panicked or stopped; the message is the panic's.
    #[error("internal error: {0} (please report it)")]
    Internal(String),
}

fn describe_lost(lost: &[(usize, FaceFailure)]) -> String {
    lost.iter().map(|(i, e)| format!("face {i}: {e}")).collect::<Vec<_>>().join("; ")
}

impl PhotoFailure {
    /// A stage's panic as this photo's failure.
    pub fn internal(panic: &dyn std::any::Any) -> Self {
        PhotoFailure::Internal(panic_message(panic))
    }
}

/// What a panic said, when it said it with a string.
pub fn panic_message(panic: &dyn std::any::Any) -> String {
    let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    what.unwrap_or_else(|| "a stage panicked".into())
}

/// An inpainting mask beside an aligned crop that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MaskFileError {
    #[error("inpainting mask {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("inpainting mask {} is {}x{}, the face {}x{}", path.display(), mask.0, mask.1, face.0, face.1)]
    WrongSize { path: PathBuf, mask: (u32, u32), face: (u32, u32) },
}
