//! A photo's path as a chain of stages: read + detect + align ([`stages::prepare`]) → restore on the
//! GPU in batches that mix photos ([`gpu::GpuStage`]) → paste + encode ([`stages::finish`]).
//!
//! The engine's worker thread owns the GPU stage and coordinates; the CPU stages run either one step
//! after the other, each waited for ([`runner::Inline`], `--workers 1`), or on worker threads joined
//! to it by bounded queues while it keeps the GPU busy ([`runner::Threaded`]). Photos in flight are charged against a RAM
//! budget ([`budget::InFlightBudget`]). Every photo ends in exactly one [`Outcome`] and every face
//! is restored or reported; nothing partial is ever written (results appear through a rename).

pub mod budget;
pub mod gpu;
pub mod history;
pub mod items;
pub mod outcome;
pub mod paste;
pub mod runner;
pub mod stages;

use std::time::Duration;

/// A photo's identity from the queue to the last event: the caller (window, CLI) chooses it.
pub type PhotoId = u64;

pub use outcome::{Outcome, PhotoFailure};
pub use stages::Preview;

/// Chooses how many faces go into each restorer call, and reacts to running out of memory.
pub trait BatchSizer {
    /// Faces for the next call (at least 1).
    fn next(&mut self) -> usize;
    /// A call of `n` faces succeeded.
    fn succeeded(&mut self, n: usize);
    /// A call of `n > 1` faces ran out of memory: the size to retry the same faces with, or `None`
    /// to report them failed.
    fn out_of_memory(&mut self, n: usize) -> Option<usize>;
}

/// A fixed size that never adapts: what tools without memory handling do (benchmark baseline).
#[derive(Debug, Clone, Copy)]
pub struct NoRetry(pub usize);

impl BatchSizer for NoRetry {
    fn next(&mut self) -> usize {
        self.0.max(1)
    }
    fn succeeded(&mut self, _: usize) {}
    fn out_of_memory(&mut self, _: usize) -> Option<usize> {
        None
    }
}

/// Time each stage was busy (summed over its workers), for `bench pipeline` and the summary.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StageTimes {
    pub decode: Duration,
    /// Background super-resolution (with `--upscale`).
    pub upscale: Duration,
    pub detect: Duration,
    pub align: Duration,
    pub restore: Duration,
    /// The face parser's paste masks (on the GPU stage, after each batch).
    pub mask: Duration,
    /// The identity network's measurements and the guard's (on the GPU stage, after the masks).
    pub identity: Duration,
    pub paste: Duration,
    pub encode: Duration,
}

impl StageTimes {
    pub fn total(&self) -> Duration {
        self.decode + self.upscale + self.detect + self.align + self.restore + self.mask + self.identity + self.paste + self.encode
    }

    pub fn named(&self) -> [(&'static str, Duration); 9] {
        [
            ("decode", self.decode),
            ("upscale", self.upscale),
            ("detect", self.detect),
            ("align", self.align),
            ("restore (GPEN)", self.restore),
            ("mask (parser)", self.mask),
            ("identity", self.identity),
            ("paste", self.paste),
            ("encode", self.encode),
        ]
    }

    pub fn add(&mut self, other: &StageTimes) {
        self.decode += other.decode;
        self.upscale += other.upscale;
        self.detect += other.detect;
        self.align += other.align;
        self.restore += other.restore;
        self.mask += other.mask;
        self.identity += other.identity;
        self.paste += other.paste;
        self.encode += other.encode;
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub photos_restored: usize,
    pub photos_without_faces: usize,
    pub photos_already_done: usize,
    pub photos_failed: usize,
    pub photos_cancelled: usize,
    pub faces_restored: usize,
    pub faces_failed: usize,
    pub oom_events: usize,
    pub cpu_fallbacks: usize,
    /// Faces the parser could not mask, pasted with the feathered rectangle instead.
    pub mask_fallbacks: usize,
    /// Faces of written photos whose identity was measured, those below the guard's floor, and
    /// those the guard softened with the strength it took from them in all.
    pub faces_measured: usize,
    pub faces_below_floor: usize,
    pub faces_softened: usize,
    pub strength_lowered: f64,
    /// Faces whose identity could not be measured (pasted as restored).
    pub identity_failures: usize,
    /// Embeddings the identity network computed (two a face, and each bisection step's).
    pub identity_embeddings: usize,
    pub times: StageTimes,
    /// Time the GPU stage had no full batch and waited for the CPU stages.
    pub gpu_waited: Duration,
    /// Most photos in flight at once (admitted and not yet finished).
    pub peak_photos_in_flight: usize,
    /// Most RAM charged to photos in flight at once, and the budget it was charged against.
    pub peak_charged_bytes: u64,
    pub ram_budget: u64,
    /// CPU stage workers of the run (0: every step on the engine's thread).
    pub workers: usize,
}

impl Summary {
    pub fn any_failed(&self) -> bool {
        self.photos_failed > 0 || self.faces_failed > 0 || self.photos_cancelled > 0
    }

    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Restored { faces, identity, .. } => {
                self.photos_restored += 1;
                self.faces_restored += faces;
                for id in identity.iter().flatten() {
                    self.faces_measured += 1;
                    self.faces_below_floor += id.below_floor as usize;
                    if id.softened {
                        self.faces_softened += 1;
                        self.strength_lowered += (id.asked_strength - id.strength) as f64;
                    }
                }
            }
            Outcome::NoFaces { .. } => self.photos_without_faces += 1,
            Outcome::AlreadyDone { .. } => self.photos_already_done += 1,
            Outcome::Failed { faces_failed, .. } => {
                self.photos_failed += 1;
                self.faces_failed += faces_failed;
            }
            Outcome::Cancelled => self.photos_cancelled += 1,
        }
    }

    pub fn photos(&self) -> usize {
        self.photos_restored + self.photos_without_faces + self.photos_already_done + self.photos_failed + self.photos_cancelled
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "photos restored {}, without faces {}, already done {}, failed {}",
            self.photos_restored, self.photos_without_faces, self.photos_already_done, self.photos_failed
        )?;
        if self.photos_cancelled > 0 {
            write!(f, ", cancelled {}", self.photos_cancelled)?;
        }
        write!(f, "; faces restored {}, failed {}", self.faces_restored, self.faces_failed)?;
        if self.oom_events > 0 || self.cpu_fallbacks > 0 {
            write!(f, "; out-of-memory recoveries {}, CPU fallbacks {}", self.oom_events, self.cpu_fallbacks)?;
        }
        if self.mask_fallbacks > 0 {
            write!(f, "; {} faces pasted with the rectangle mask (the parser failed)", self.mask_fallbacks)?;
        }
        if self.faces_below_floor > 0 {
            write!(f, "; {} of {} faces measured below the identity floor", self.faces_below_floor, self.faces_measured)?;
            if self.faces_softened > 0 {
                let mean = self.strength_lowered / self.faces_softened as f64;
                write!(f, ", {} softened (strength lowered by {mean:.2} on average)", self.faces_softened)?;
            }
        }
        if self.identity_failures > 0 {
            write!(f, "; {} faces' identity could not be measured", self.identity_failures)?;
        }
        Ok(())
    }
}
