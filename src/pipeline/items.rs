//! What travels from the GPU stage to the finish stage for each face: the restored face with its
//! paste mask, or why it was not restored. Kept apart from both stages so neither depends on the other
//! for it.

use crate::error::RunError;
use image::RgbImage;

/// Why a face was not restored (the photo is written without it, and the face is reported).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FaceFailure {
    /// The restorer failed on it: out of memory even alone with no CPU fallback, or another error.
    #[error("{0}")]
    Restorer(RunError),
    /// Out of memory on the device even alone, and the CPU fallback failed too.
    #[error("{device}; on the CPU too: {cpu}")]
    AlsoOnCpu { device: RunError, cpu: RunError },
}

/// A restored face and, with a parser, its paste mask at the crop size; with the identity network,
/// its identity as pasted and the strength it is pasted at (lowered by the guard, maybe).
#[derive(Debug, Clone)]
pub struct RestoredFace {
    pub image: RgbImage,
    pub mask: Option<Vec<f32>>,
    pub identity: Option<crate::identity::FaceIdentity>,
}
