//! The face tool's state (drawn by `panels::face_tool`): one face of the selected photo colorized,
//! or inpainted where the user brushed over it. GPEN's colorization and inpainting checkpoints work
//! on aligned faces, not whole photos, so the tool shows the face as the model sees it (aligned),
//! the brush paints in its pixels, and the result is a face image of its own.

use crate::detect::Face;
use crate::weights::Task;
use image::{GrayImage, Luma, RgbImage};
use std::path::PathBuf;

/// The catalogue checkpoint a face tool task needs (only colorization and inpainting have a tool).
pub fn model_for(task: Task) -> Option<&'static str> {
    match task {
        Task::Colorize => Some("GPEN-Colorization-1024"),
        Task::Inpaint => Some("GPEN-Inpainting-1024"),
        Task::Restore | Task::Seg2Face => None,
    }
}

/// Default brush radius, as a share of the crop's side (a 1024 px face: a 20 px brush).
const BRUSH_SHARE: f32 = 0.02;

#[derive(Debug, Clone, PartialEq)]
pub enum ToolStatus {
    /// The task's checkpoint is not installed (the tool offers its download).
    NeedsModel,
    /// The face is being aligned on a helper thread.
    Aligning,
    /// The crop is shown; for inpainting, waiting for the brush.
    Ready,
    Running,
    Done,
    Failed(String),
}

#[derive(Debug)]
pub struct FaceTool {
    /// The photo's row and the face's index in it.
    pub key: u64,
    pub face_index: usize,
    pub face: Face,
    pub photo: PathBuf,
    pub task: Task,
    /// The catalogue name of the task's checkpoint (offered for download when missing).
    pub model_name: String,
    pub weights: PathBuf,
    pub status: ToolStatus,
    pub crop: Option<RgbImage>,
    /// White where inpainting fills in; the crop's size.
    pub mask: Option<GrayImage>,
    /// The crop with the mask tinted over it: what the window shows.
    pub display: Option<RgbImage>,
    /// Where the brush was in the previous frame of a drag (crop pixels).
    pub stroke_from: Option<[f32; 2]>,
    /// In crop pixels.
    pub brush_radius: f32,
    pub result: Option<(PathBuf, RgbImage)>,
    /// Bumped whenever the crop, mask or result changes (their textures are made again).
    pub revision: u64,
}

impl FaceTool {
    pub fn new(key: u64, face_index: usize, face: Face, photo: PathBuf, task: Task, model_name: String, weights: PathBuf) -> Self {
        let status = if weights.is_file() { ToolStatus::Aligning } else { ToolStatus::NeedsModel };
        FaceTool {
            key,
            face_index,
            face,
            photo,
            task,
            model_name,
            weights,
            status,
            crop: None,
            mask: None,
            display: None,
            stroke_from: None,
            brush_radius: 0.0,
            result: None,
            revision: 0,
        }
    }

    /// The aligned face arrived: inpainting waits for strokes, colorization can run at once.
    pub fn set_crop(&mut self, crop: RgbImage) {
        if self.task == Task::Inpaint {
            self.mask = Some(GrayImage::new(crop.width(), crop.height()));
            self.brush_radius = (crop.width() as f32 * BRUSH_SHARE).max(2.0);
        }
        self.display = Some(crop.clone());
        self.crop = Some(crop);
        self.status = ToolStatus::Ready;
        self.revision += 1;
    }

    /// Paints the brush along the segment `from`–`to` (crop pixels) into the mask.
    pub fn paint(&mut self, from: [f32; 2], to: [f32; 2]) {
        let r = self.brush_radius;
        let (Some(mask), Some(display), Some(crop)) = (self.mask.as_mut(), self.display.as_mut(), self.crop.as_ref()) else { return };
        let (w, h) = (mask.width() as i64, mask.height() as i64);
        let (x0, x1) = (from[0].min(to[0]) - r, from[0].max(to[0]) + r);
        let (y0, y1) = (from[1].min(to[1]) - r, from[1].max(to[1]) + r);
        let clamp = |v: f32, hi: i64| (v.floor() as i64).clamp(0, hi - 1);
        let mut painted = false;
        for y in clamp(y0, h)..=clamp(y1, h) {
            for x in clamp(x0, w)..=clamp(x1, w) {
                // Pixel centres within the brush's radius of the segment.
                if distance_to_segment([x as f32 + 0.5, y as f32 + 0.5], from, to) <= r {
                    let (x, y) = (x as u32, y as u32);
                    mask.put_pixel(x, y, Luma([255]));
                    display.put_pixel(x, y, tinted(crop.get_pixel(x, y)));
                    painted = true;
                }
            }
        }
        if painted {
            self.revision += 1;
        }
    }

    pub fn clear_mask(&mut self) {
        if let Some(mask) = self.mask.as_mut() {
            mask.fill(0);
            self.display = self.crop.clone();
            self.revision += 1;
        }
    }

    /// Share of the face the brush covered (0 for colorization).
    pub fn masked_share(&self) -> f32 {
        self.mask.as_ref().map_or(0.0, |m| m.pixels().filter(|p| p[0] > 127).count() as f32 / (m.width() * m.height()).max(1) as f32)
    }

    /// Whether the run button does something now.
    pub fn can_run(&self) -> bool {
        let ready = matches!(self.status, ToolStatus::Ready | ToolStatus::Done | ToolStatus::Failed(_)) && self.crop.is_some();
        ready && (self.task != Task::Inpaint || self.masked_share() > 0.0)
    }

    /// The job for the helper thread, when the tool can run.
    pub fn job(&self, settings: &crate::config::RunConfig) -> Option<super::face_job::FaceJob> {
        self.can_run().then(|| super::face_job::FaceJob {
            photo: self.photo.clone(),
            face_index: self.face_index,
            crop: self.crop.clone().expect("can_run has a crop"),
            mask: self.mask.clone(),
            settings: settings.clone(),
            task: self.task,
            weights: self.weights.clone(),
        })
    }

    pub fn finished(&mut self, result: Result<(PathBuf, RgbImage), super::face_job::FaceToolError>) {
        match result {
            Ok(done) => {
                self.result = Some(done);
                self.status = ToolStatus::Done;
            }
            Err(e) => self.status = ToolStatus::Failed(e.to_string()),
        }
        self.revision += 1;
    }

    /// The task's checkpoint was installed while the tool waited for it.
    pub fn model_installed(&mut self) -> bool {
        let now = self.status == ToolStatus::NeedsModel && self.weights.is_file();
        if now {
            self.status = ToolStatus::Aligning;
        }
        now
    }
}

/// A brushed pixel: half way to red, so the face stays visible under the stroke.
fn tinted(p: &image::Rgb<u8>) -> image::Rgb<u8> {
    image::Rgb([(p[0] as u16 / 2 + 128) as u8, p[1] / 2, p[2] / 2])
}

fn distance_to_segment(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 { 0.0 } else { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) };
    let (cx, cy) = (a[0] + t * dx, a[1] + t * dy);
    ((p[0] - cx).powi(2) + (p[1] - cy).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(task: Task) -> FaceTool {
        let face = Face { bbox: [0.0; 4], score: 1.0, landmarks: [[0.0; 2]; 5] };
        let mut t = FaceTool::new(1, 0, face, "p.png".into(), task, "m".into(), "/nonexistent".into());
        t.set_crop(RgbImage::new(100, 100));
        t
    }

    #[test]
    fn a_stroke_paints_a_capsule_of_the_brush_radius_and_clear_empties_it() {
        let mut t = tool(Task::Inpaint);
        assert_eq!(t.brush_radius, 2.0);
        assert!(!t.can_run(), "nothing brushed: nothing to fill in");
        t.brush_radius = 5.0;
        t.paint([20.0, 50.0], [80.0, 50.0]);
        let m = t.mask.as_ref().unwrap();
        assert_eq!(m.get_pixel(50, 50)[0], 255);
        assert_eq!(m.get_pixel(50, 54)[0], 255, "within the radius");
        assert_eq!(m.get_pixel(50, 56)[0], 0, "beyond the radius");
        assert_eq!(m.get_pixel(88, 50)[0], 0, "beyond the stroke's end");
        assert_eq!(t.display.as_ref().unwrap().get_pixel(50, 50).0, [128, 0, 0], "the stroke shows on the face");
        assert_eq!(t.display.as_ref().unwrap().get_pixel(50, 56).0, [0, 0, 0]);
        // A capsule of length 60 and radius 5: 60·10 + π·25 ≈ 679 px of 10,000.
        assert!((t.masked_share() - 0.0679).abs() < 0.004, "{}", t.masked_share());
        assert!(t.can_run());
        t.clear_mask();
        assert_eq!(t.masked_share(), 0.0);
        assert_eq!(t.display, t.crop, "cleared: the face as it is");
    }

    #[test]
    fn strokes_off_the_face_are_clipped_and_colorization_has_no_mask() {
        let mut t = tool(Task::Inpaint);
        t.paint([-50.0, -50.0], [-40.0, -40.0]);
        assert_eq!(t.masked_share(), 0.0);
        t.paint([99.0, 99.0], [150.0, 150.0]);
        assert!(t.masked_share() > 0.0);
        let c = tool(Task::Colorize);
        assert!(c.mask.is_none());
        assert!(c.can_run());
    }
}
