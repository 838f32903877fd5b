//! Fakes behind the product's traits, shared by the engine's tests.

use gpen_studio::detect::{DetectError, Face, FaceDetector};
use image::RgbImage;
use std::path::{Path, PathBuf};

/// Finds `per_photo` faces at fixed places in any photo of at least 200 x 200 px; fails on photos
/// 230 px wide (a detector that breaks on some inputs).
pub struct GridDetector {
    pub per_photo: usize,
}

impl FaceDetector for GridDetector {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError> {
        if image.width() < 200 {
            return Ok(vec![]);
        }
        if image.width() == 230 {
            return Err(DetectError::Options("the detector broke on this photo".into()));
        }
        Ok((0..self.per_photo)
            .map(|i| {
                let (x, y) = (30.0 + 40.0 * (i % 4) as f32, 40.0 + 60.0 * (i / 4) as f32);
                Face {
                    bbox: [x - 15.0, y - 20.0, x + 15.0, y + 20.0],
                    score: 0.99,
                    landmarks: [[x - 7.0, y - 5.0], [x + 7.0, y - 5.0], [x, y + 2.0], [x - 6.0, y + 10.0], [x + 6.0, y + 10.0]],
                }
            })
            .collect())
    }
}

/// `n` photos of 220 x 220 px, `photoNN.png`, each a little different.
pub fn grid_photos(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("photo{i:02}.png"));
            RgbImage::from_fn(220, 220, |x, y| image::Rgb([(x + i as u32) as u8, y as u8, 128])).save(&p).unwrap();
            p
        })
        .collect()
}
