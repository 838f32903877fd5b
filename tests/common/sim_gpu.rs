//! A simulated CUDA device for the planner's tests, behind the product's own traits: a caching
//! allocator that reserves in blocks and keeps them after a batch (as libtorch's does), NVML-style
//! readings (free = total − other processes − our reserve), a competing process that allocates and
//! frees on a schedule, and an out-of-memory error when a batch needs more than can be had.

use gpen_studio::engine::memory::{MemoryProbe, MemorySample};
use gpen_studio::error::RunError;
use gpen_studio::restore::FaceRestorer;
use image::RgbImage;
use std::sync::{Arc, Mutex};

pub const GIB: u64 = 1 << 30;
/// libtorch's allocator rounds large reservations to 2 MiB; a coarser block makes rounding visible.
pub const BLOCK: u64 = 64 << 20;

fn round_up(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK) * BLOCK
}

#[derive(Debug, Default)]
pub struct SimState {
    pub total: u64,
    /// Held by other processes.
    pub others: u64,
    /// Our allocator's reservation and what of it is in use.
    pub reserved: u64,
    pub allocated: u64,
    pub peak_reserved: u64,
    /// (before batch call number, bytes the competitor holds from then on).
    pub schedule: Vec<(usize, u64)>,
    /// Restorer calls so far, with the faces of each and whether it ran out of memory.
    pub calls: Vec<(usize, bool)>,
}

impl SimState {
    pub fn free(&self) -> u64 {
        self.total.saturating_sub(self.others).saturating_sub(self.reserved)
    }

    /// Allocates like libtorch's caching allocator: from the reservation when it has room, else
    /// reserves more; when the device cannot give more, frees the unused reservation and tries once
    /// again before giving up.
    fn alloc(&mut self, bytes: u64) -> bool {
        if self.allocated + bytes > self.reserved {
            let mut grow = round_up(self.allocated + bytes - self.reserved);
            if grow > self.free() {
                self.empty_cache();
                grow = round_up((self.allocated + bytes).saturating_sub(self.reserved));
                if grow > self.free() {
                    return false;
                }
            }
            self.reserved += grow;
        }
        self.allocated += bytes;
        self.peak_reserved = self.peak_reserved.max(self.reserved);
        true
    }

    fn release(&mut self, bytes: u64) {
        self.allocated -= bytes;
    }

    /// `torch.cuda.empty_cache()`: the unused reservation goes back to the device.
    fn empty_cache(&mut self) {
        self.reserved = round_up(self.allocated);
    }

    /// The competitor takes what the schedule says for this call, as far as the device has it.
    fn apply_schedule(&mut self) {
        let call = self.calls.len();
        if let Some(&(_, want)) = self.schedule.iter().rev().find(|(at, _)| *at <= call) {
            let others_max = self.total.saturating_sub(self.reserved);
            self.others = want.min(others_max);
        }
    }
}

#[derive(Clone)]
pub struct SimGpu(pub Arc<Mutex<SimState>>);

impl SimGpu {
    pub fn new(total: u64, schedule: Vec<(usize, u64)>) -> Self {
        SimGpu(Arc::new(Mutex::new(SimState { total, schedule, ..SimState::default() })))
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.0.lock().unwrap()
    }

    pub fn probe(&self) -> Box<dyn MemoryProbe> {
        Box::new(SimProbe(self.clone(), true))
    }

    /// The readings the planner had before it counted our reservation: NVML's free memory alone.
    pub fn probe_free_only(&self) -> Box<dyn MemoryProbe> {
        Box::new(SimProbe(self.clone(), false))
    }

    /// A restorer of 64 px crops (identity) that loads `weights` bytes onto the device and needs
    /// `workspace + faces × per_face` bytes while a batch runs.
    pub fn restorer(&self, weights: u64, workspace: u64, per_face: u64) -> Result<Box<dyn FaceRestorer>, gpen_studio::error::SetupError> {
        if !self.state().alloc(weights) {
            return Err(gpen_studio::error::SetupError::Load("the weights do not fit the simulated device".into()));
        }
        Ok(Box::new(SimRestorer { gpu: self.clone(), workspace, per_face }))
    }
}

/// NVML-style readings; with `held`, our reservation is reported as ours to reuse.
struct SimProbe(SimGpu, bool);

impl MemoryProbe for SimProbe {
    fn sample(&mut self) -> Result<MemorySample, gpen_studio::engine::memory::ProbeError> {
        let s = self.0.state();
        let sample = MemorySample::new("Simulated CUDA GPU".into(), false, s.total, s.free(), s.reserved, Some(90));
        Ok(if self.1 { sample.holding(s.reserved) } else { sample })
    }
}

struct SimRestorer {
    gpu: SimGpu,
    workspace: u64,
    per_face: u64,
}

impl FaceRestorer for SimRestorer {
    fn size(&self) -> u32 {
        64
    }

    fn restore_batch(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        let mut s = self.gpu.state();
        s.apply_schedule();
        let need = self.workspace + faces.len() as u64 * self.per_face;
        let fits = s.alloc(need);
        s.calls.push((faces.len(), !fits));
        if !fits {
            return Err(RunError::OutOfMemory(format!("CUDA out of memory. Tried to allocate {need} bytes (simulated)")));
        }
        s.release(need);
        Ok(faces.iter().map(|f| (*f).clone()).collect())
    }

    fn release_cache(&self) {
        self.gpu.state().empty_cache();
    }
}
