//! The RAM that photos in flight may take. The coordinator charges a photo before it is read and
//! gives the charge back when the photo ends, so a folder of 100 MP scans cannot exhaust memory
//! however many workers there are. A photo larger than the whole budget still runs, alone.

/// Bytes per pixel a photo keeps from its decoding until it is written: the decoded RGB (3), and
/// the paste-back's working planes — the full-size mask (4), the restored-face image in f32 (12)
/// and the result (3) — which exist together at the end. The aligned crops are added per face.
pub const KEPT_BYTES_PER_PIXEL: u64 = 22;

/// Bytes per pixel a 16-bit photo keeps besides: its own samples (6) and alpha (2), and the 16-bit
/// result composited from them (6).
pub const DEEP_BYTES_PER_PIXEL: u64 = 14;

/// Bytes per photo pixel that MTCNN takes on the CPU while it detects, beyond the kept photo: its
/// planar f32 copy (12) and the image pyramid, 216 bytes per pixel of a level (the per-level
/// account in `engine::memory_model::DetectionModel`) over `Σ 0.709^2k ≈ 2.02` levels, which start
/// at scale `12 / min_face`.
pub fn detection_bytes_per_pixel(min_face: f64) -> f64 {
    let first_scale = (12.0 / min_face.max(1.0)).min(1.0);
    let pyramid = 1.0 / (1.0 - 0.709f64 * 0.709);
    12.0 + 216.0 * pyramid * first_scale * first_scale
}

/// What a photo of `pixels` is charged: while it is read and searched (`detecting`) and once only
/// its pixels and faces are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub detecting: u64,
    pub kept: u64,
}

impl Charge {
    /// `detection_per_pixel` is 0 where detection runs on the GPU (its memory is planned there).
    pub fn for_photo(pixels: u64, detection_per_pixel: f64) -> Self {
        Charge::with_detection(pixels, (pixels as f64 * detection_per_pixel) as u64)
    }

    /// A photo of `pixels` whose search takes `detection` bytes beyond the photo itself (0 where
    /// detection runs on the GPU).
    pub fn with_detection(pixels: u64, detection: u64) -> Self {
        let kept = pixels.saturating_mul(KEPT_BYTES_PER_PIXEL);
        Charge { detecting: kept.saturating_add(detection), kept }
    }

    /// The charge of a 16-bit photo of `pixels`, which keeps its own samples too.
    pub fn with_deep_samples(self, pixels: u64) -> Self {
        let deep = pixels.saturating_mul(DEEP_BYTES_PER_PIXEL);
        Charge { detecting: self.detecting.saturating_add(deep), kept: self.kept.saturating_add(deep) }
    }

    /// The kept charge plus `faces` aligned crops of `size` px.
    pub fn with_faces(self, faces: usize, size: u32) -> u64 {
        self.kept.saturating_add(faces as u64 * size as u64 * size as u64 * 3)
    }
}

/// The budget; owned by the coordinator, so it needs no lock.
#[derive(Debug, Clone)]
pub struct InFlightBudget {
    capacity: u64,
    used: u64,
    photos: usize,
    peak_used: u64,
    peak_photos: usize,
}

impl InFlightBudget {
    pub fn new(capacity: u64) -> Self {
        InFlightBudget { capacity, used: 0, photos: 0, peak_used: 0, peak_photos: 0 }
    }

    /// Whether a photo charged `bytes` may start now: it fits beside what is in flight, or nothing
    /// is in flight at all.
    pub fn admits(&self, bytes: u64) -> bool {
        self.photos == 0 || self.used.saturating_add(bytes) <= self.capacity
    }

    pub fn take(&mut self, bytes: u64) {
        self.used = self.used.saturating_add(bytes);
        self.photos += 1;
        self.peak_used = self.peak_used.max(self.used);
        self.peak_photos = self.peak_photos.max(self.photos);
    }

    /// A photo's charge changed from `from` to `to` bytes (detection ended).
    pub fn recharge(&mut self, from: u64, to: u64) {
        self.used = self.used.saturating_sub(from).saturating_add(to);
        self.peak_used = self.peak_used.max(self.used);
    }

    pub fn give_back(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
        self.photos = self.photos.saturating_sub(1);
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn photos(&self) -> usize {
        self.photos
    }

    pub fn peak_used(&self) -> u64 {
        self.peak_used
    }

    pub fn peak_photos(&self) -> usize {
        self.peak_photos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_16_bit_photo_is_charged_for_its_own_samples_while_it_is_kept() {
        let eight = Charge::with_detection(1_000, 500);
        let deep = eight.with_deep_samples(1_000);
        assert_eq!((deep.detecting - eight.detecting, deep.kept - eight.kept), (14_000, 14_000));
        assert_eq!(deep.with_faces(2, 10) - eight.with_faces(2, 10), 14_000, "faces add the same either way");
    }

    #[test]
    fn a_photo_larger_than_the_budget_runs_alone() {
        let mut b = InFlightBudget::new(100);
        assert!(b.admits(500), "nothing in flight: admitted whatever its size");
        b.take(500);
        assert!(!b.admits(1), "nothing else beside it");
        b.give_back(500);
        assert!(b.admits(60));
        b.take(60);
        assert!(b.admits(40) && !b.admits(41));
        b.take(40);
        b.recharge(60, 10);
        assert!(b.admits(50));
        assert_eq!((b.peak_photos(), b.peak_used()), (2, 500));
    }

    #[test]
    fn detection_costs_less_when_the_smallest_face_is_larger() {
        assert!(detection_bytes_per_pixel(20.0) < detection_bytes_per_pixel(12.0));
        // At min_face 12 the pyramid starts at full scale: 12 + 216 × 2.02.
        assert!((detection_bytes_per_pixel(12.0) - (12.0 + 216.0 / (1.0 - 0.709 * 0.709))).abs() < 1e-9);
        let c = Charge::for_photo(1_000_000, 100.0);
        assert_eq!(c.kept, 22_000_000);
        assert_eq!(c.detecting, 122_000_000);
        assert_eq!(c.with_faces(2, 10), 22_000_600);
    }
}
