//! GPU textures for the downscaled previews and thumbnails, uploaded once per revision.

use egui::{ColorImage, Context, TextureHandle, TextureOptions};
use image::RgbImage;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Thumbnail,
    Before,
    After,
    /// The face tool's aligned face (with the brushed mask over it) and its result.
    FaceTool,
    FaceResult,
    /// The compare view's model B result.
    B,
}

/// Textures by photo key and slot; a texture is uploaded again when its revision changes.
#[derive(Default)]
pub struct Textures {
    map: HashMap<(u64, Slot), (u64, TextureHandle)>,
}

impl Textures {
    pub fn get(&mut self, ctx: &Context, key: u64, slot: Slot, revision: u64, image: &RgbImage) -> TextureHandle {
        if let Some((rev, handle)) = self.map.get(&(key, slot))
            && *rev == revision
        {
            return handle.clone();
        }
        let max = ctx.input(|i| i.max_texture_side) as u32;
        let fitted;
        let image = if image.width() > max || image.height() > max {
            let s = max as f32 / image.width().max(image.height()) as f32;
            fitted =
                image::imageops::thumbnail(image, ((image.width() as f32 * s) as u32).max(1), ((image.height() as f32 * s) as u32).max(1));
            &fitted
        } else {
            image
        };
        let color = ColorImage::from_rgb([image.width() as usize, image.height() as usize], image.as_raw());
        let handle = ctx.load_texture(format!("photo-{key}-{slot:?}"), color, TextureOptions::LINEAR);
        self.map.insert((key, slot), (revision, handle.clone()));
        handle
    }

    /// Frees the textures of a removed photo.
    pub fn forget(&mut self, key: u64) {
        self.map.retain(|(k, _), _| *k != key);
    }

    /// Frees some textures of a photo (the face tool's, when it opens on another face).
    pub fn forget_slots(&mut self, key: u64, slots: &[Slot]) {
        self.map.retain(|(k, s), _| *k != key || !slots.contains(s));
    }

    /// Keeps the textures of the photos `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        self.map.retain(|(k, _), _| keep(*k));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
