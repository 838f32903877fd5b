//! Face detection: the first step of a photo's path (read -> **detect** -> align -> restore -> paste).
//!
//! [`Mtcnn`] is a port of facenet-pytorch 2.6.0's MTCNN (Zhang et al., "Joint Face Detection and
//! Alignment using Multi-task Cascaded Convolutional Networks", 2016), matching its `detect()`
//! boxes, scores and five landmarks (reference/mtcnn.md).

pub mod mtcnn;
pub mod retinaface;

pub use mtcnn::Mtcnn;
pub use retinaface::RetinaFace;

use crate::checkpoint::CheckpointError;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One detected face, in pixel coordinates of the input image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// `[x1, y1, x2, y2]`; may reach outside the image for faces cut by the border.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The detector's probability that this is a face.
    pub score: f32,
    /// `[x, y]` of the image-left eye, image-right eye, nose tip, image-left and image-right mouth
    /// corners (facenet-pytorch's order).
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }

    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }

    /// The same face in a photo `factor` times as large.
    pub fn scaled(&self, factor: f32) -> Face {
        Face { bbox: self.bbox.map(|v| v * factor), score: self.score, landmarks: self.landmarks.map(|p| p.map(|v| v * factor)) }
    }
}

/// Detection settings; [`Default`] is facenet-pytorch's `MTCNN()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    /// Smallest face side looked for, in pixels: sets the first pyramid scale (12 / min_face_size).
    pub min_face_size: f64,
    /// Score thresholds of the three stages (P-Net keeps `>=`, R-Net and O-Net keep `>`).
    pub thresholds: [f32; 3],
    /// Ratio between consecutive pyramid scales, in (0, 1).
    pub factor: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions { min_face_size: 20.0, thresholds: [0.6, 0.7, 0.7], factor: 0.709 }
    }
}

impl DetectOptions {
    pub fn validate(&self) -> Result<(), DetectError> {
        // factor >= 1 would never end the pyramid loop.
        if !(self.min_face_size.is_finite() && self.min_face_size > 0.0) {
            return Err(DetectError::Options(format!("min face size must be positive, got {}", self.min_face_size)));
        }
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(DetectError::Options(format!("pyramid factor must be in (0, 1), got {}", self.factor)));
        }
        if let Some(t) = self.thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
            return Err(DetectError::Options(format!("thresholds are probabilities in [0, 1], got {t}")));
        }
        Ok(())
    }
}

/// Finds faces in a photo.
pub trait FaceDetector {
    /// Every face found, in the detector's order (MTCNN: largest box first; RetinaFace: the
    /// authors' order, score descending), which is also the paste order. An image too small to hold
    /// a face gives an empty list.
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError>;
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A weights file is missing, unreadable or does not match the network.
    #[error(transparent)]
    Weights(#[from] CheckpointError),
    #[error("invalid detection options: {0}")]
    Options(String),
    /// A libtorch failure while running a network (out of memory, broken device, ...).
    #[error(transparent)]
    Run(#[from] crate::error::RunError),
}

impl From<tch::TchError> for DetectError {
    fn from(err: tch::TchError) -> Self {
        DetectError::Run(err.into())
    }
}

/// The detector a run uses, after `auto` looked at what is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectorUse {
    RetinaFace(std::path::PathBuf),
    Mtcnn,
}

impl DetectorUse {
    pub fn describe(&self) -> String {
        match self {
            DetectorUse::RetinaFace(p) => format!("RetinaFace ({})", p.display()),
            DetectorUse::Mtcnn => "MTCNN".into(),
        }
    }
}

/// The detector `use_` names, on `device`: RetinaFace (GPEN's) with `threshold`, or MTCNN with
/// `min_face` as its smallest face.
pub fn detector_for(
    use_: &DetectorUse,
    threshold: f32,
    min_face: f64,
    device: tch::Device,
) -> Result<Box<dyn FaceDetector + Send>, crate::error::SetupError> {
    match use_ {
        DetectorUse::RetinaFace(path) => RetinaFace::load(path, device)
            .and_then(|r| r.with_threshold(threshold))
            .map(|r| Box::new(r) as Box<dyn FaceDetector + Send>)
            .map_err(|e| crate::error::SetupError::Load(e.to_string())),
        DetectorUse::Mtcnn => {
            let options = DetectOptions { min_face_size: min_face, ..DetectOptions::default() };
            Mtcnn::load(&mtcnn::default_models_dir(), device)
                .and_then(|m| m.with_options(options))
                .map(|m| Box::new(m) as Box<dyn FaceDetector + Send>)
                .map_err(|e| crate::error::SetupError::Load(e.to_string()))
        }
    }
}

/// Aligned crops (GPEN's aligned mode): the whole image is one face, already aligned, so nothing is
/// searched. Its landmarks are the alignment template scaled to the image, for display.
#[derive(Debug, Clone, Copy, Default)]
pub struct WholeImage;

impl FaceDetector for WholeImage {
    fn detect(&self, image: &RgbImage) -> Result<Vec<Face>, DetectError> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let template = crate::align::reference_template(512);
        let landmarks = template.map(|[x, y]| [x / 512.0 * w, y / 512.0 * h]);
        Ok(vec![Face { bbox: [0.0, 0.0, w, h], score: 1.0, landmarks }])
    }
}
