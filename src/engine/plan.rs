//! The batch plan for a run configuration: one function for the worker's decision before each batch,
//! `restore --dry-run` and the window's live recommendation, so all three always agree.

use super::memory_model::{self, CalibrationStore, MemoryModel};
use super::planner::{self, Recommendation};
use crate::config::RunConfig;
use crate::device::Precision;
use crate::model::GpenConfig;

/// The largest batch `config` allows: on the CPU also `cpu_max_batch` (batching does not pay there).
pub fn max_batch(config: &RunConfig, cpu: bool) -> usize {
    if cpu { config.cpu_max_batch.min(config.max_batch) } else { config.max_batch }
}

/// The memory model the planner uses for `gpen` at `precision` on the device named `device_label`:
/// the stored calibration, else the analytic estimate.
pub fn memory_model_for(gpen: &GpenConfig, precision: Precision, device_label: &str) -> MemoryModel {
    CalibrationStore::load(&CalibrationStore::default_path())
        .get(device_label, gpen, precision)
        .unwrap_or_else(|| memory_model::analytic(gpen, precision))
}

/// The batch for the next call: the planner's answer for `available` = (free, held by us) and the
/// configuration's ratio, or the user's fixed batch (with the plan it replaces in the reason).
pub fn plan(available: Option<(u64, u64)>, cpu: bool, config: &RunConfig, model: &MemoryModel) -> Recommendation {
    let mut rec = match available {
        Some((free, held)) => planner::recommend_available(free, held, config.memory_ratio, model, max_batch(config, cpu)),
        None => Recommendation { batch: 1, free: 0, budget: 0, reason: "no memory reading; 1 face at a time".into() },
    };
    if cpu && config.cpu_max_batch < config.max_batch {
        // Name the limit that applies: batching does not pay on the CPU (docs/BENCHMARKS.md).
        rec.reason = rec.reason.replace("(max batch)", &format!("(at most {} a call on the CPU)", config.cpu_max_batch));
    }
    if let Some(b) = config.batch_override {
        rec.reason = format!("batch fixed at {b} by the user (the memory plan said {}: {})", rec.batch, rec.reason);
        rec.batch = b;
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory_model::ModelSource;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_plan_counts_what_we_hold_and_the_override_names_the_plan() {
        let model = MemoryModel { fixed: GIB, per_face: GIB, source: ModelSource::Analytic };
        let config = RunConfig { memory_ratio: 0.5, max_batch: 64, ..RunConfig::default() };
        // 4 GiB free + 8 GiB held: (12 × 0.5 − 1) ÷ 1 = 5 faces, on a GPU.
        let rec = plan(Some((4 * GIB, 8 * GIB)), false, &config, &model);
        assert_eq!(rec.batch, 5);
        assert!(rec.reason.starts_with("(4.0 GiB free + 8.0 GiB held by gpen-studio) × 0.50"), "{}", rec.reason);
        // On the CPU the configuration's CPU limit applies.
        let cpu = plan(Some((4 * GIB, 8 * GIB)), true, &config, &model);
        assert_eq!(cpu.batch, 1);
        assert!(cpu.reason.ends_with("→ 1 (at most 1 a call on the CPU)"), "{}", cpu.reason);
        let fixed = plan(Some((4 * GIB, 0)), false, &RunConfig { batch_override: Some(3), ..config }, &model);
        assert_eq!(fixed.batch, 3);
        assert!(fixed.reason.contains("the memory plan said 1"), "{}", fixed.reason);
        assert_eq!(plan(None, false, &RunConfig::default(), &model).batch, 1);
    }
}
