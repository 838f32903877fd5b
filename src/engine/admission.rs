//! Admission of the queue's next photo into a run: its size (from the file's header, read once), the
//! SR tiles it would get, and the RAM it is charged while detected and while its faces wait; the
//! coordinator (`run.rs`) decides with it whether the photo may start now.

use super::memory_model::{DetectionModel, MemoryModel};
use super::planner::Recommendation;
use super::worker::EngineEvent;
use crate::archive::Photo;
use crate::config::{ResolvedRun, RunConfig};
use crate::pipeline::PhotoId;
use crate::pipeline::budget::{self, Charge};
use std::path::Path;
use tch::Device;

/// The queue's next photo as the coordinator sees it before admitting it.
pub(super) struct NextPhoto {
    /// Pixels it is searched at (with SR: at its upscaled size).
    pub(super) pixels: u64,
    pub(super) charge: Charge,
    /// Its SR tiles (`None`: whole, or no upscaling).
    pub(super) tiles: Option<crate::upscale::Tiles>,
}

/// Sizes and charges the queue's first photo, for one run.
pub(super) struct Admission<'r> {
    config: &'r ResolvedRun,
    device: Device,
    sr: Option<SrPlan>,
    detection: DetectionModel,
    /// The first photo's header, read once.
    dims: Option<(PhotoId, Header)>,
    /// The last tile plan announced (a new one is an event).
    last_tiles: String,
}

impl<'r> Admission<'r> {
    pub(super) fn new(config: &'r ResolvedRun, device: Device, sr: Option<SrPlan>) -> Self {
        Admission { config, device, sr, detection: DetectionModel::for_config(config), dims: None, last_tiles: String::new() }
    }

    /// The queue's first photo (`front`), planned against the batch recommendation `rec`; a tile
    /// plan that differs from the last one is announced through `emit`.
    pub(super) fn next(
        &mut self,
        front: Option<&(PhotoId, Photo)>,
        rec: &Recommendation,
        model: &MemoryModel,
        emit: &mut dyn FnMut(EngineEvent),
    ) -> Option<NextPhoto> {
        let (id, photo) = front?;
        let header = match self.dims {
            Some((cached, h)) if cached == *id => h,
            _ => photo_header(&photo.path).unwrap_or(Header { size: (0, 0), sixteen: false }),
        };
        self.dims = Some((*id, header));
        let (w, h) = header.size;
        let tiles = match self.sr {
            Some(plan) => {
                let (tiles, reason) = sr_tiles(self.config, w, h, rec, model, plan.per_pixel, plan.multiple);
                if reason != self.last_tiles {
                    self.last_tiles = reason.clone();
                    emit(EngineEvent::TilePlan { tile: tiles.as_ref().map(|t| t.size), reason });
                }
                tiles
            }
            None => None,
        };
        // With SR the photo is kept (and searched) at its upscaled size.
        let s = self.sr.map_or(1, |p| p.scale as u64);
        let pixels = w as u64 * h as u64 * s * s;
        // On the CPU its SR runs in RAM: one tile (with its context) at a time.
        let sr_ram = match self.sr {
            Some(p) if self.device == Device::Cpu => {
                let whole = w as u64 * h as u64;
                p.per_pixel * tiles.map_or(whole, |t| ((t.size + 2 * t.pad) as u64).pow(2).min(whole))
            }
            _ => 0,
        };
        let mut charge = Charge::with_detection(pixels, self.detection_ram(pixels).max(sr_ram));
        // A 16-bit photo keeps its own samples until it is written (an upscaled one does not).
        if header.sixteen && self.sr.is_none() {
            charge = charge.with_deep_samples(pixels);
        }
        Some(NextPhoto { pixels, charge, tiles })
    }

    /// Whether searching `pixels` fits beside faces in flight in `free` device memory.
    pub(super) fn detection_fits(&self, pixels: u64, free: u64) -> bool {
        self.detection.fits(pixels as f64 / 1e6, free, self.config.memory_ratio)
    }

    /// Detection's RAM is charged where it runs on the CPU; on CUDA its memory is planned there.
    fn detection_ram(&self, pixels: u64) -> u64 {
        let retinaface = matches!(self.config.detector, crate::config::DetectorUse::RetinaFace(_));
        match (self.device == Device::Cpu && !self.config.aligned, retinaface) {
            (false, _) => 0,
            (true, true) => self.detection.per_photo_bytes(pixels as f64 / 1e6),
            (true, false) => (pixels as f64 * budget::detection_bytes_per_pixel(self.config.min_face)) as u64,
        }
    }
}

/// What admission reads of a photo before it starts: from the header, without decoding.
#[derive(Debug, Clone, Copy)]
struct Header {
    size: (u32, u32),
    /// 16 bits a sample (kept beside the 8-bit pixels).
    sixteen: bool,
}

fn photo_header(path: &Path) -> Option<Header> {
    use image::ImageDecoder;
    let decoder = image::ImageReader::open(path).ok()?.with_guessed_format().ok()?.into_decoder().ok()?;
    let color = decoder.color_type();
    Some(Header { size: decoder.dimensions(), sixteen: color.bytes_per_pixel() / color.channel_count() == 2 })
}

/// What the coordinator needs to plan SR tiles.
#[derive(Debug, Clone, Copy)]
pub(super) struct SrPlan {
    pub(super) per_pixel: u64,
    pub(super) scale: u32,
    pub(super) multiple: u32,
}

/// The SR tiles for a `w` x `h` photo: the user's, or the largest that fits in what the face
/// batch `rec` leaves of the budget (one photo is upscaled at a time, on the GPU stage), with why.
/// `per_pixel`: the upscaler's activation bytes per input pixel; `multiple`: its tile multiple.
pub fn sr_tiles(
    config: &RunConfig,
    w: u32,
    h: u32,
    rec: &Recommendation,
    model: &MemoryModel,
    per_pixel: u64,
    multiple: u32,
) -> (Option<crate::upscale::Tiles>, String) {
    if let Some(t) = config.tile {
        let tiles = (t > 0).then_some(crate::upscale::Tiles { size: t, pad: config.tile_pad });
        let what =
            if t > 0 { format!("tiles of {t} px (--tile), +{} px context", config.tile_pad) } else { "whole photo (--tile 0)".into() };
        return (tiles, what);
    }
    let left = rec.budget.saturating_sub(model.bytes(rec.batch));
    let plan = crate::upscale::plan_tiles(w, h, left, per_pixel, config.tile_pad, multiple);
    // A run that only upscales has no batch: the tiles have the whole budget.
    let after_batch = if config.upscale_only { "" } else { "; budget left after the batch" };
    (plan.tiles, format!("{}{after_batch}", plan.reason))
}
