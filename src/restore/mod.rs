//! What the photo pipeline needs from a face restorer. GPEN is the product's implementation; tests
//! substitute fakes (an identity restorer, one that runs out of memory) behind the same trait. What
//! happens when a batch runs out of memory is the run's one policy ([`crate::oom`]), applied by the
//! GPU stage (`pipeline::gpu`).

pub mod checkpoint;
pub mod gpen;
pub mod network;

use crate::error::RunError;
use crate::restore::gpen::Gpen;
use crate::restore::network::GpenConfig;
use image::RgbImage;

pub trait FaceRestorer {
    /// Side of the square aligned crop the restorer takes and returns.
    fn size(&self) -> u32;
    /// Restores a batch of aligned crops, in order. Out-of-memory comes back as
    /// [`RunError::OutOfMemory`] so the caller can split the batch.
    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError>;
    /// Returns cached device memory after an out-of-memory error (no-op where meaningless).
    fn release_cache(&self) {}
    /// The GPEN configuration, when this is GPEN (for the memory model).
    fn config(&self) -> Option<GpenConfig> {
        None
    }
    /// The GPEN network itself, when this is GPEN (for calibration).
    fn as_gpen(&self) -> Option<&Gpen> {
        None
    }
}

/// The restorer of a run that restores no faces (`upscale`, [`RunConfig::upscale_only`]): such a
/// run never finds a face to give it.
///
/// [`RunConfig::upscale_only`]: crate::config::RunConfig::upscale_only
pub struct NoRestorer;

impl FaceRestorer for NoRestorer {
    fn size(&self) -> u32 {
        512
    }

    fn restore_batch(&self, _: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        Err(RunError::Torch("this run only upscales; it restores no faces".into()))
    }
}

impl FaceRestorer for Gpen {
    fn size(&self) -> u32 {
        Gpen::size(self)
    }

    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        self.restore(faces)
    }

    fn release_cache(&self) {
        if self.device.is_cuda() {
            let _ = crate::sys::memory::empty_cache();
        }
    }

    fn config(&self) -> Option<GpenConfig> {
        Some(Gpen::config(self))
    }

    fn as_gpen(&self) -> Option<&Gpen> {
        Some(self)
    }
}
