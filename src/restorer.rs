//! What the photo pipeline needs from a face restorer. GPEN is the product's implementation; tests
//! substitute fakes (an identity restorer, one that runs out of memory) behind the same trait.

use crate::error::RunError;
use crate::gpen::Gpen;
use crate::model::GpenConfig;
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

impl FaceRestorer for Gpen {
    fn size(&self) -> u32 {
        Gpen::size(self)
    }

    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        self.restore(faces)
    }

    fn release_cache(&self) {
        if self.device.is_cuda() {
            let _ = crate::memory::empty_cache();
        }
    }

    fn config(&self) -> Option<GpenConfig> {
        Some(Gpen::config(self))
    }

    fn as_gpen(&self) -> Option<&Gpen> {
        Some(self)
    }
}

/// Runs `faces` in one batch; when memory runs out, frees the cache and retries each half, down to
/// single faces. Every face comes back restored or with its own error, in order.
pub fn restore_splitting<R: FaceRestorer + ?Sized>(restorer: &R, faces: &[&RgbImage]) -> Vec<Result<RgbImage, String>> {
    if faces.is_empty() {
        return Vec::new();
    }
    match restorer.restore_batch(faces) {
        Ok(out) => out.into_iter().map(Ok).collect(),
        Err(e) if e.is_oom() && faces.len() > 1 => {
            restorer.release_cache();
            let (a, b) = faces.split_at(faces.len() / 2);
            let mut out = restore_splitting(restorer, a);
            out.extend(restore_splitting(restorer, b));
            out
        }
        Err(e) => faces.iter().map(|_| Err(e.to_string())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Returns each crop inverted; runs out of memory for batches above `capacity`.
    struct Limited {
        capacity: usize,
        calls: RefCell<Vec<usize>>,
    }

    impl FaceRestorer for Limited {
        fn size(&self) -> u32 {
            2
        }
        fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
            self.calls.borrow_mut().push(faces.len());
            if faces.len() > self.capacity {
                return Err(RunError::OutOfMemory("CUDA out of memory. Tried to allocate 2 GiB".into()));
            }
            Ok(faces.iter().map(|f| RgbImage::from_fn(2, 2, |x, y| image::Rgb(f.get_pixel(x, y).0.map(|v| 255 - v)))).collect())
        }
    }

    fn faces(n: u8) -> Vec<RgbImage> {
        (0..n).map(|i| RgbImage::from_pixel(2, 2, image::Rgb([i, i, i]))).collect()
    }

    #[test]
    fn out_of_memory_splits_the_batch_and_keeps_every_face_in_order() {
        let input = faces(7);
        let refs: Vec<&RgbImage> = input.iter().collect();
        let r = Limited { capacity: 2, calls: RefCell::new(vec![]) };
        let out = restore_splitting(&r, &refs);
        assert_eq!(out.len(), 7);
        for (i, face) in out.into_iter().enumerate() {
            assert_eq!(face.unwrap().get_pixel(0, 0)[0], 255 - i as u8);
        }
        assert_eq!(*r.calls.borrow(), [7, 3, 1, 2, 4, 2, 2]);
    }

    #[test]
    fn a_face_that_fails_alone_is_reported_not_dropped() {
        let input = faces(3);
        let refs: Vec<&RgbImage> = input.iter().collect();
        let r = Limited { capacity: 0, calls: RefCell::new(vec![]) };
        let out = restore_splitting(&r, &refs);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|f| f.as_ref().unwrap_err().contains("out of memory")));
    }
}
