//! What the window's live plan ("Batch now", "Background SR tiles now") needs from files: the memory
//! model (the calibration store, the add-ons' checkpoint shapes) and the upscaler's cost per pixel.
//! Made on a helper thread whenever the settings it depends on change, and every
//! [`PLAN_INPUTS_REFRESH`] (an add-on installed meanwhile changes what `auto` picks); the window
//! itself only does the planner's arithmetic with the latest inputs.

use crate::config::RunConfig;
use crate::engine::memory_model::MemoryModel;
use crate::restore::network::GpenConfig;
use std::time::Duration;

/// How often the inputs are made again while the settings stay the same.
pub const PLAN_INPUTS_REFRESH: Duration = Duration::from_secs(3);

/// The live plan's inputs for one set of settings (`key`).
#[derive(Debug, Clone)]
pub struct PlanInputs {
    /// GPEN's memory model (calibrated or analytic) with the parser's and, on CUDA, the detectors'
    /// and upscalers' weights: what a run would plan with.
    pub model: MemoryModel,
    /// The upscaler's (activations per input pixel, tile multiple), when the settings upscale.
    pub sr: Option<(u64, u32)>,
}

/// A request for [`PlanInputs`].
#[derive(Debug, Clone)]
pub struct PlanJob {
    pub key: String,
    pub run: RunConfig,
    pub gpen: GpenConfig,
    /// The memory reading's device name, under which calibrations are stored.
    pub device: String,
    pub cuda: bool,
}

impl PlanJob {
    /// The request for these settings, model and device, under their [`PlanJob::key`].
    pub fn new(key: String, run: &RunConfig, gpen: GpenConfig, device: &str, cuda: bool) -> Self {
        PlanJob { key, run: run.clone(), gpen, device: device.into(), cuda }
    }

    /// Names exactly what the inputs depend on (not the memory ratio or the batch limits, which the
    /// arithmetic applies): the window compares it every frame and asks only when it changes.
    pub fn key(run: &RunConfig, gpen: GpenConfig, device: &str, cuda: bool) -> String {
        format!(
            "{device}|{cuda}|{gpen:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
            run.precision,
            run.detector,
            run.detector_weights,
            run.mask,
            run.parser_weights,
            run.parser_size,
            run.upscale,
            run.sr_weights,
            run.workers,
            run.aligned,
            run.weights.display()
        )
    }

    /// Reads what the plan needs (the calibration store, checkpoints' shapes; nothing is loaded).
    /// Settings that cannot run yet (an add-on asked for is missing) plan GPEN alone.
    pub fn inputs(&self) -> PlanInputs {
        let gpen = crate::engine::plan::memory_model_for(&self.gpen, self.run.precision, &self.device);
        let resolved = self.run.resolve().ok();
        let model = match &resolved {
            Some(r) => crate::engine::plan::run_model(gpen, r, self.cuda, self.gpen.size as u32),
            None => gpen,
        };
        let sr = resolved.and_then(|r| r.upscaler.clone()).and_then(|path| crate::upscale::read_config(&path).ok()).map(|c| {
            let per_pixel = crate::engine::plan::sr_bytes_per_pixel(&c, &self.device);
            (per_pixel, c.multiple())
        });
        PlanInputs { model, sr }
    }
}
