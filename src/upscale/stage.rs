//! Background super-resolution as a stage: the photo is upscaled before its faces are searched, as
//! GPEN's `FaceEnhancement.process` does with `--use_sr` (faces are found on, and cut from, the input
//! resized bilinearly to the upscaled size; the background of the result is the network's output).
//!
//! Tiles are sized from memory like face batches ([`plan_tiles`]); running out of memory follows the
//! run's one policy ([`crate::oom`]) in [`upscale_with_retry`]: the tile is halved and the photo run
//! again, down to [`MIN_TILE`]; the context around each tile stays the authors' 10
//! px whatever the tile, so a smaller tile moves the output only by the seams the golden measures.

use crate::error::{Interrupt, RunError};
use crate::upscale::Tiles;
use image::RgbImage;

/// The authors' context around each tile (`RealESRNet(tile_pad=10)`).
pub const TILE_PAD: u32 = 10;
/// The smallest tile a halving goes to: below it the context would outweigh the tile.
pub const MIN_TILE: u32 = 32;

/// What the photo stage needs from an upscaler; the product's is [`crate::upscale::Upscaler`], tests use
/// fakes (one that runs out of memory above a tile size).
pub trait PhotoUpscaler {
    fn scale(&self) -> u32;
    /// Upscales `image`, whole or in `tiles`; `exact` keeps the authors' output size (their unpad
    /// quirk) instead of exactly `scale` × the input. Out-of-memory comes back as
    /// [`RunError::OutOfMemory`]; `stop` is asked between steps, and its `true` as
    /// [`RunError::Interrupted`].
    fn upscale(&self, image: &RgbImage, tiles: Option<Tiles>, exact: bool, stop: &mut Interrupt<'_>) -> Result<RgbImage, RunError>;
    /// Peak activation bytes per pixel of input (of a tile with its context), for tile planning.
    fn bytes_per_input_pixel(&self) -> u64;
    /// The network's configuration, when it is an RRDBNet (for calibrations).
    fn rrdb_config(&self) -> Option<crate::upscale::RrdbConfig> {
        None
    }
    /// Tile sides and context must be multiples of this (RRDBNet's pixel-unshuffle: 4 at ×1, 2 at ×2).
    fn multiple(&self) -> u32 {
        1
    }
    /// Returns cached device memory after an out-of-memory error.
    fn release_cache(&self) {}
}

impl PhotoUpscaler for crate::upscale::Upscaler {
    fn scale(&self) -> u32 {
        crate::upscale::Upscaler::scale(self)
    }

    fn upscale(&self, image: &RgbImage, tiles: Option<Tiles>, exact: bool, stop: &mut Interrupt<'_>) -> Result<RgbImage, RunError> {
        self.process_until(image, tiles, exact, stop).map_err(|e| match e {
            crate::upscale::SrError::Run(run) => run,
            other => RunError::Torch(other.to_string()),
        })
    }

    fn bytes_per_input_pixel(&self) -> u64 {
        crate::upscale::bytes_per_input_pixel(&self.config())
    }

    fn multiple(&self) -> u32 {
        self.config().multiple()
    }

    fn rrdb_config(&self) -> Option<crate::upscale::RrdbConfig> {
        Some(self.config())
    }

    fn release_cache(&self) {
        if self.device().is_cuda() {
            let _ = crate::sys::memory::empty_cache();
        }
    }
}

/// A tile choice and why, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilePlan {
    /// `None`: the photo runs whole.
    pub tiles: Option<Tiles>,
    pub reason: String,
}

/// The largest square tile whose activations (tile plus context on both sides) fit in `budget`
/// bytes at `per_pixel` bytes a pixel of input: the photo whole when it fits, else that tile, never
/// below [`MIN_TILE`] (the out-of-memory policy is the backstop there), fitted to the upscaler's
/// `multiple` ([`fit`]).
pub fn plan_tiles(width: u32, height: u32, budget: u64, per_pixel: u64, pad: u32, multiple: u32) -> TilePlan {
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64);
    let per_pixel = per_pixel.max(1);
    let whole = width as u64 * height as u64 * per_pixel;
    if whole <= budget {
        return TilePlan { tiles: None, reason: format!("whole photo: {} ≤ {} for SR", mib(whole), mib(budget)) };
    }
    let side = ((budget / per_pixel) as f64).sqrt().floor() as u32;
    let Tiles { size: tile, pad } = fit(Tiles { size: side.saturating_sub(2 * pad).max(MIN_TILE), pad }, multiple);
    TilePlan {
        tiles: Some(Tiles { size: tile, pad }),
        reason: format!("tiles of {tile} px (+{pad} px context): √({} ÷ {per_pixel} B per pixel) = {side} px", mib(budget)),
    }
}

/// `tiles` made to fit an upscaler whose sides must be multiples of `m`: the tile rounded down
/// (to at least `m`), the context rounded up, so the context never shrinks below what was asked.
pub fn fit(tiles: Tiles, m: u32) -> Tiles {
    let m = m.max(1);
    Tiles { size: (tiles.size / m * m).max(m), pad: tiles.pad.div_ceil(m) * m }
}

/// What [`upscale_with_retry`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upscaled {
    pub image: RgbImage,
    /// The tiles it finished with (smaller than asked after out-of-memory).
    pub tiles: Option<Tiles>,
    pub oom_events: usize,
}

/// Why a photo could not be upscaled.
#[derive(Debug, thiserror::Error)]
pub enum UpscaleError {
    /// Out of memory even at the smallest tile.
    #[error("upscaling ran out of memory even in tiles of {tile} px: {cause}")]
    OutOfMemory { tile: u32, cause: RunError },
    /// Any other failure of the network.
    #[error("upscaling failed: {0}")]
    Failed(RunError),
    /// The run was cancelled while the photo was being upscaled.
    #[error("upscaling stopped: the run was cancelled")]
    Interrupted,
}

/// How an upscaling that ran out of memory `oom_events` times finished (in tiles of `tile` px, or
/// whole), as the command line and the window say it.
pub fn describe_recovery(oom_events: usize, tile: Option<u32>) -> String {
    match tile {
        Some(t) => format!("out of memory {oom_events}×, finished in tiles of {t} px"),
        None => format!("out of memory {oom_events}×"),
    }
}

/// Upscales `image` starting with `tiles`; on out-of-memory frees the cache, halves the tile (a
/// whole photo becomes tiles of half its longer side) and runs the photo again, down to
/// [`MIN_TILE`]. Any other error, or running out of memory at the smallest tile, is the photo's
/// error; `stop` saying stop (asked between the network's steps) ends it at once.
pub fn upscale_with_retry(
    upscaler: &dyn PhotoUpscaler,
    image: &RgbImage,
    tiles: Option<Tiles>,
    exact: bool,
    stop: &mut Interrupt<'_>,
) -> Result<Upscaled, UpscaleError> {
    let m = upscaler.multiple();
    // The share of work is the tile: a whole photo (`None`) counts as a tile of its longer side.
    let side = |tiles: Option<Tiles>| tiles.map_or(image.width().max(image.height()), |t| t.size);
    let mut oom_events = 0;
    let halved = |tiles: Option<Tiles>| {
        let pad = tiles.map_or(TILE_PAD, |t| t.pad);
        (side(tiles) > MIN_TILE).then(|| Some(fit(Tiles { size: (side(tiles) / 2).max(MIN_TILE), pad }, m)))
    };
    let tried = crate::oom::retry_smaller(
        tiles.map(|t| fit(t, m)),
        |tiles| upscaler.upscale(image, tiles, exact, &mut *stop),
        || {
            upscaler.release_cache();
            oom_events += 1;
        },
        halved,
    );
    match tried {
        Ok((image, tiles)) => Ok(Upscaled { image, tiles, oom_events }),
        Err((RunError::Interrupted, _)) => Err(UpscaleError::Interrupted),
        Err((e, tiles)) if e.is_oom() => Err(UpscaleError::OutOfMemory { tile: side(tiles), cause: e }),
        Err((e, _)) => Err(UpscaleError::Failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Doubles the image by pixel repetition; out of memory for tiles (or whole photos) above `limit`.
    struct Limited {
        limit: u32,
        calls: RefCell<Vec<Option<u32>>>,
    }

    impl PhotoUpscaler for Limited {
        fn scale(&self) -> u32 {
            2
        }
        fn upscale(&self, image: &RgbImage, tiles: Option<Tiles>, _: bool, stop: &mut Interrupt<'_>) -> Result<RgbImage, RunError> {
            self.calls.borrow_mut().push(tiles.map(|t| t.size));
            if stop() {
                return Err(RunError::Interrupted);
            }
            let side = tiles.map_or(image.width().max(image.height()), |t| t.size);
            if side > self.limit {
                return Err(RunError::OutOfMemory(format!("tile {side}")));
            }
            Ok(image::imageops::resize(image, image.width() * 2, image.height() * 2, image::imageops::FilterType::Nearest))
        }
        fn bytes_per_input_pixel(&self) -> u64 {
            1000
        }
    }

    #[test]
    fn out_of_memory_halves_the_tile_until_it_fits_and_keeps_the_context() {
        let up = Limited { limit: 100, calls: RefCell::new(Vec::new()) };
        let img = RgbImage::new(500, 300);
        let done = upscale_with_retry(&up, &img, None, false, &mut || false).unwrap();
        assert_eq!(*up.calls.borrow(), vec![None, Some(250), Some(125), Some(62)]);
        assert_eq!(done.tiles, Some(Tiles { size: 62, pad: TILE_PAD }));
        assert_eq!((done.oom_events, done.image.dimensions()), (3, (1000, 600)));
        let tiny = Limited { limit: 8, calls: RefCell::new(Vec::new()) };
        let err = upscale_with_retry(&tiny, &img, Some(Tiles { size: 64, pad: 10 }), false, &mut || false).unwrap_err();
        assert!(err.to_string().contains("even in tiles of 32 px"), "{err}");
    }

    #[test]
    fn a_stop_ends_the_upscaling_at_once_without_a_smaller_try() {
        let up = Limited { limit: 100, calls: RefCell::new(Vec::new()) };
        let err = upscale_with_retry(&up, &RgbImage::new(500, 300), None, false, &mut || true).unwrap_err();
        assert!(matches!(err, UpscaleError::Interrupted), "{err:?}");
        assert_eq!(*up.calls.borrow(), vec![None]);
    }

    #[test]
    fn tiles_fit_the_unshuffle_and_keep_their_context() {
        assert_eq!(fit(Tiles { size: 239, pad: 10 }, 4), Tiles { size: 236, pad: 12 });
        assert_eq!(fit(Tiles { size: 25, pad: 10 }, 2), Tiles { size: 24, pad: 10 });
        assert_eq!(fit(Tiles { size: 3, pad: 0 }, 4), Tiles { size: 4, pad: 0 });
        assert_eq!(fit(Tiles { size: 77, pad: 9 }, 1), Tiles { size: 77, pad: 9 });
    }

    #[test]
    fn tiles_are_planned_from_the_budget() {
        // 100 x 100 at 1000 B/px = 10 MB: whole within 16 MiB.
        assert_eq!(plan_tiles(100, 100, 16 << 20, 1000, TILE_PAD, 1).tiles, None);
        // 1 MiB ÷ 1000 B = 1048 px² → 32 px side, minus 2 × 10 context = 12 → the floor of 32.
        let small = plan_tiles(1000, 1000, 1 << 20, 1000, TILE_PAD, 1);
        assert_eq!(small.tiles, Some(Tiles { size: MIN_TILE, pad: TILE_PAD }));
        // 64 MiB → 259 px side → tiles of 239 px.
        let plan = plan_tiles(1000, 1000, 64 << 20, 1000, TILE_PAD, 1);
        assert_eq!(plan.tiles, Some(Tiles { size: 239, pad: TILE_PAD }));
        assert!(plan.reason.contains("tiles of 239 px (+10 px context)"), "{}", plan.reason);
        // At ×1 (multiple 4) the tile and its context fit the pixel-unshuffle, and the reason says so.
        let x1 = plan_tiles(1000, 1000, 64 << 20, 1000, TILE_PAD, 4);
        assert_eq!(x1.tiles, Some(Tiles { size: 236, pad: 12 }));
        assert!(x1.reason.contains("tiles of 236 px (+12 px context)"), "{}", x1.reason);
    }
}
