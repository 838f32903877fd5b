//! Tile geometry of Real-ESRGAN's `tile_process` (which GPEN's `RealESRNet` copies): the padded
//! input is cut into `size` x `size` tiles in row-major order (the last row and column shorter),
//! each run with up to `pad` px of context on every side (clamped at the image border); only the
//! core's output is pasted, without blending, so tile seams differ slightly from an untiled run.
//!
//! Pure integer arithmetic, so the geometry is tested without a network.

/// Tiled processing: `size` x `size` input pixels per tile, `pad` px of context around each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiles {
    pub size: u32,
    pub pad: u32,
}

/// A rectangle in pixels, `x`/`y` its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The same rectangle in an image `scale` times larger.
    pub fn scaled(&self, scale: u32) -> Rect {
        Rect { x: self.x * scale, y: self.y * scale, w: self.w * scale, h: self.h * scale }
    }
}

/// One tile on the (padded) input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// The input pixels whose output this tile provides (`input_start..input_end`).
    pub core: Rect,
    /// `core` widened by the context and clamped to the image: what the network sees.
    pub context: Rect,
}

impl Tile {
    /// Where the core's output lies inside this tile's output (`scale` x `context`).
    pub fn crop_in_output(&self, scale: u32) -> Rect {
        Rect { x: self.core.x - self.context.x, y: self.core.y - self.context.y, w: self.core.w, h: self.core.h }.scaled(scale)
    }

    /// Where the core's output goes in the whole output image.
    pub fn place_in_output(&self, scale: u32) -> Rect {
        self.core.scaled(scale)
    }
}

impl Tiles {
    /// The tiles of a `width` x `height` input in `tile_process` order (row by row). Empty when
    /// `size` or the image is 0.
    pub fn grid(&self, width: u32, height: u32) -> Vec<Tile> {
        if self.size == 0 || width == 0 || height == 0 {
            return Vec::new();
        }
        let (nx, ny) = (width.div_ceil(self.size), height.div_ceil(self.size));
        let span = |i: u32, extent: u32| {
            let start = i * self.size;
            let end = (start + self.size).min(extent);
            let (c_start, c_end) = (start.saturating_sub(self.pad), (end + self.pad).min(extent));
            (start, end - start, c_start, c_end - c_start)
        };
        let mut tiles = Vec::with_capacity((nx * ny) as usize);
        for ty in 0..ny {
            let (y, h, cy, ch) = span(ty, height);
            for tx in 0..nx {
                let (x, w, cx, cw) = span(tx, width);
                tiles.push(Tile { core: Rect { x, y, w, h }, context: Rect { x: cx, y: cy, w: cw, h: ch } });
            }
        }
        tiles
    }

    /// Whether every tile's context has sides divisible by `multiple` (the pixel-unshuffle of
    /// scales 2 and 1 needs even / multiple-of-4 sides). On an input whose sides are multiples,
    /// `size` and `pad` being multiples is enough; otherwise some tile would not fit the network.
    pub fn fits(&self, multiple: u32) -> bool {
        self.size > 0 && self.size.is_multiple_of(multiple) && self.pad.is_multiple_of(multiple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_grid_has_fifteen_tiles_with_clamped_context() {
        // x2-tiled golden: 101x71 input, reflect-padded to 102x72, size 24, pad 10.
        let tiles = Tiles { size: 24, pad: 10 }.grid(102, 72);
        assert_eq!(tiles.len(), 15);
        // (h, w) of every tile input, as recorded by the golden generator (config.json).
        let hw: Vec<(u32, u32)> = tiles.iter().map(|t| (t.context.h, t.context.w)).collect();
        let widths = [34, 44, 44, 40, 16];
        let heights = [34, 44, 34];
        let want: Vec<(u32, u32)> = heights.iter().flat_map(|&h| widths.iter().map(move |&w| (h, w))).collect();
        assert_eq!(hw, want);
        // The last column: core 96..102 (6 px), context 86..102.
        let last = tiles[4];
        assert_eq!(last.core, Rect { x: 96, y: 0, w: 6, h: 24 });
        assert_eq!(last.context, Rect { x: 86, y: 0, w: 16, h: 34 });
        assert_eq!(last.crop_in_output(2), Rect { x: 20, y: 0, w: 12, h: 48 });
        assert_eq!(last.place_in_output(2), Rect { x: 192, y: 0, w: 12, h: 48 });
        // The middle tile has context on all four sides.
        let mid = tiles[7];
        assert_eq!(mid.core, Rect { x: 48, y: 24, w: 24, h: 24 });
        assert_eq!(mid.context, Rect { x: 38, y: 14, w: 44, h: 44 });
        assert_eq!(mid.crop_in_output(4), Rect { x: 40, y: 40, w: 96, h: 96 });
    }

    #[test]
    fn cores_cover_the_image_exactly_once() {
        for (w, h, size, pad) in [(102, 72, 24, 10), (7, 5, 3, 1), (10, 10, 10, 4), (10, 10, 64, 10), (1, 1, 1, 0)] {
            let tiles = Tiles { size, pad }.grid(w, h);
            let mut hits = vec![0u32; (w * h) as usize];
            for t in &tiles {
                let (c, k) = (t.core, t.context);
                assert!(k.x <= c.x && k.y <= c.y && c.x + c.w <= k.x + k.w && c.y + c.h <= k.y + k.h);
                assert!(k.x + k.w <= w && k.y + k.h <= h);
                assert!(c.x - k.x <= pad && k.x + k.w - (c.x + c.w) <= pad);
                for y in c.y..c.y + c.h {
                    for x in c.x..c.x + c.w {
                        hits[(y * w + x) as usize] += 1;
                    }
                }
            }
            assert!(hits.iter().all(|&n| n == 1), "{w}x{h} size {size} pad {pad}");
        }
        // One tile larger than the image is the whole image.
        assert_eq!(
            Tiles { size: 64, pad: 10 }.grid(10, 8),
            vec![Tile { core: Rect { x: 0, y: 0, w: 10, h: 8 }, context: Rect { x: 0, y: 0, w: 10, h: 8 } }]
        );
        assert!(Tiles { size: 0, pad: 10 }.grid(10, 8).is_empty());
    }

    #[test]
    fn unshuffle_needs_multiples() {
        assert!(Tiles { size: 24, pad: 10 }.fits(2));
        assert!(!Tiles { size: 24, pad: 10 }.fits(4));
        assert!(!Tiles { size: 3, pad: 10 }.fits(2));
        assert!(Tiles { size: 3, pad: 1 }.fits(1));
        assert!(!Tiles { size: 0, pad: 0 }.fits(1));
    }
}
