//! Face alignment, GPEN's `align_faces.py`: the similarity transform (Umeyama, with scale) from a
//! face's 5 landmarks to a fixed template, and the bilinear warp of the photo into an S x S crop
//! (gpen.md §4.5). The crop is what the generator restores; `tfm_inv` pastes the result back.

mod affine;
mod template;
mod umeyama;
mod warp;

pub use affine::Affine2;
pub use template::reference_template;
pub use umeyama::similarity_from_points;
pub use warp::{image_to_tensor, tensor_to_images, warp_affine, warp_affine_batch};

use crate::error::RunError;
use image::RgbImage;
use tch::{Device, TchError};

/// Five landmarks in photo pixels: left eye, right eye, nose, left and right mouth corner.
pub type Landmarks = [[f32; 2]; 5];

#[derive(Debug, thiserror::Error)]
pub enum AlignError {
    /// The landmarks (or a matrix) do not define a usable transform, e.g. all points coincide.
    #[error("cannot align: {0}")]
    Degenerate(String),
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<TchError> for AlignError {
    fn from(err: TchError) -> Self {
        AlignError::Run(err.into())
    }
}

/// One face cut out of a photo.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    pub crop: RgbImage,
    /// Photo pixels -> crop pixels.
    pub tfm: Affine2,
    /// Crop pixels -> photo pixels (for the paste-back).
    pub tfm_inv: Affine2,
}

/// The photo -> crop transform for one face: its landmarks onto the `size` template.
pub fn face_transform(landmarks: &Landmarks, size: u32) -> Result<(Affine2, Affine2), AlignError> {
    let tfm = similarity_from_points(landmarks, &reference_template(size));
    let tfm_inv = tfm.inverse().ok_or_else(|| AlignError::Degenerate(format!("landmarks {landmarks:?} give no invertible transform")))?;
    Ok((tfm, tfm_inv))
}

/// Aligns one face into a `size` x `size` crop, warping on `device`.
pub fn align_face(image: &RgbImage, landmarks: &Landmarks, size: u32, device: Device) -> Result<AlignedFace, AlignError> {
    let mut faces = align_faces(image, std::slice::from_ref(landmarks), size, device)?;
    Ok(faces.pop().expect("one face in, one out"))
}

/// Aligns every face of a photo: the photo goes to `device` once and all crops come from one warp.
pub fn align_faces(image: &RgbImage, faces: &[Landmarks], size: u32, device: Device) -> Result<Vec<AlignedFace>, AlignError> {
    if faces.is_empty() {
        return Ok(Vec::new());
    }
    let transforms = faces.iter().map(|l| face_transform(l, size)).collect::<Result<Vec<_>, _>>()?;
    let matrices: Vec<Affine2> = transforms.iter().map(|(tfm, _)| *tfm).collect();
    let _guard = tch::no_grad_guard();
    let photo = image_to_tensor(image, device)?;
    let crops = tensor_to_images(&warp_affine_batch(&photo, &matrices, size, size)?)?;
    Ok(crops.into_iter().zip(transforms).map(|(crop, (tfm, tfm_inv))| AlignedFace { crop, tfm, tfm_inv }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_itself_aligns_to_the_identity() {
        let t = reference_template(512);
        let (tfm, tfm_inv) = face_transform(&t, 512).unwrap();
        for (g, w) in tfm.m.iter().flatten().zip(Affine2::IDENTITY.m.iter().flatten()) {
            assert!((g - w).abs() < 1e-4, "{:?}", tfm.m);
        }
        assert!((tfm_inv.m[0][0] - 1.0).abs() < 1e-4);
    }

    #[test]
    fn coincident_landmarks_are_an_error_not_a_black_crop() {
        let img = RgbImage::new(8, 8);
        let err = align_face(&img, &[[3.0, 3.0]; 5], 16, Device::Cpu).unwrap_err();
        assert!(matches!(err, AlignError::Degenerate(_)), "{err}");
    }

    #[test]
    fn no_faces_is_no_work() {
        assert!(align_faces(&RgbImage::new(4, 4), &[], 512, Device::Cpu).unwrap().is_empty());
    }
}
