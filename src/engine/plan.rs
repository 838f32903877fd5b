//! The batch plan for a run configuration: one function for the worker's decision before each batch,
//! `restore --dry-run` and the window's live recommendation, so all three always agree.

use super::memory_model::{self, CalibrationStore, MemoryModel};
use super::planner::{self, Recommendation};
use crate::config::{ResolvedRun, RunConfig};
use crate::device::Precision;
use crate::restore::network::GpenConfig;

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

/// What the face parser adds to a batch's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserMemory {
    /// Its weights.
    pub weights: u64,
    /// One face's activations at the parser's size (fp32: the parser always runs in fp32).
    pub per_face: u64,
}

/// The parser's memory when `config` pastes with it, from the weights file's shapes (nothing is
/// put on a device); `None` without a parser or for a file that is not one (the run reports that).
pub fn parser_memory(config: &ResolvedRun) -> Option<ParserMemory> {
    let crate::config::MaskUse::Parser(path) = &config.mask else { return None };
    let shapes = crate::checkpoint::read_shapes(path).ok()?;
    let weights = crate::checkpoint::fp32_bytes(&shapes);
    let parse_config = crate::mask::parser::infer_config(&shapes).ok()?;
    let size = crate::mask::parser::input_size(&parse_config, config.parser_size)?;
    Some(ParserMemory { weights, per_face: crate::mask::parser::peak_activation_bytes(&parse_config, size) })
}

/// GPEN's memory model with the parser's added: the parser runs on each batch right after GPEN
/// (whose activations are free by then), so its weights stay resident beside GPEN's and a face
/// needs the larger of the two networks' activations.
pub fn with_parser(model: MemoryModel, parser: Option<ParserMemory>) -> MemoryModel {
    match parser {
        Some(p) => MemoryModel { fixed: model.fixed + p.weights, per_face: model.per_face.max(p.per_face), source: model.source },
        None => model,
    }
}

/// What the identity network adds to a batch's memory (it runs after GPEN and the parser, on the
/// faces they leave: like the parser, its weights stay resident and a face needs the largest of the
/// networks' activations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityMemory {
    pub weights: u64,
    /// Two embeddings a face (the face that went in and the face as pasted) at the crop side.
    pub per_face: u64,
}

/// The identity network's memory when `config` measures faces of side `crop`, from the weights
/// file's shapes; `None` when faces are not measured or the file is not an IR-SE network.
pub fn identity_memory(config: &ResolvedRun, crop: u32) -> Option<IdentityMemory> {
    let shapes = crate::checkpoint::read_shapes(config.identity.as_deref()?).ok()?;
    let ir = crate::identity::infer_config(&shapes).ok()?;
    // A crop whose side is not a multiple of 256 is measured at 256.
    let side = if crate::identity::needs_resize(crop, crop) { crate::identity::UNIT_SIDE } else { crop };
    Some(IdentityMemory { weights: crate::checkpoint::fp32_bytes(&shapes), per_face: 2 * crate::identity::bytes_per_face(&ir, side) })
}

/// The memory model of a run's GPU stage for crops of side `crop`: GPEN's (calibrated or
/// analytic), the face parser's when it pastes with one, the identity network's when it measures
/// faces, and on CUDA the detectors' and upscalers' weights, resident beside them (each stage
/// worker holds its own copies; RetinaFace-R50 is 109 MB a copy, RealESRNet 38 MB, MTCNN's are
/// negligible). SR tiles are planned from what the batch leaves.
pub fn run_model(gpen: MemoryModel, config: &ResolvedRun, cuda: bool, crop: u32) -> MemoryModel {
    let mut model = with_parser(gpen, parser_memory(config));
    if let Some(id) = identity_memory(config, crop) {
        model.fixed += id.weights;
        model.per_face = model.per_face.max(id.per_face);
    }
    if cuda && !config.aligned {
        let copies = if config.workers.count() > 1 { config.workers.count() as u64 } else { 1 };
        model.fixed += copies * (detector_weights(config) + upscaler_weights(config));
    }
    model
}

/// The SR network's activations per input pixel for tile plans on the device named `device_label`:
/// the stored calibration (`calibrate --sr-weights`), else the analytic estimate.
pub fn sr_bytes_per_pixel(config: &crate::upscale::RrdbConfig, device_label: &str) -> u64 {
    CalibrationStore::load(&CalibrationStore::default_path())
        .get_sr(device_label, config)
        .unwrap_or_else(|| crate::upscale::bytes_per_input_pixel(config))
}

/// Bytes of the SR weights `config` upscales with (0 without `--upscale`), from the file's shapes.
pub fn upscaler_weights(config: &ResolvedRun) -> u64 {
    config.upscaler.as_deref().map_or(0, weight_bytes)
}

fn weight_bytes(path: &std::path::Path) -> u64 {
    crate::checkpoint::read_shapes(path).map(|shapes| crate::checkpoint::fp32_bytes(&shapes)).unwrap_or(0)
}

/// Bytes of the RetinaFace weights `config` detects with (0 for MTCNN), from the file's shapes.
pub fn detector_weights(config: &ResolvedRun) -> u64 {
    let crate::config::DetectorUse::RetinaFace(path) = &config.detector else { return 0 };
    weight_bytes(path)
}

/// The default RAM budget of photos in flight: `ratio` of the RAM available now (under an
/// address-space limit too).
pub fn in_flight_capacity(ratio: f64) -> u64 {
    use super::memory::{MemoryProbe, SystemRamProbe};
    let free = SystemRamProbe::new().sample().map(|s| s.free).unwrap_or(4 << 30);
    (free as f64 * ratio.clamp(0.0, 1.0)) as u64
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

    #[test]
    fn the_parser_adds_its_weights_once_and_the_larger_activations_per_face() {
        let model = MemoryModel { fixed: GIB, per_face: GIB / 4, source: ModelSource::Analytic };
        let parser = ParserMemory { weights: 85 << 20, per_face: GIB / 2 };
        let both = with_parser(model.clone(), Some(parser));
        assert_eq!((both.fixed, both.per_face), (GIB + (85 << 20), GIB / 2));
        assert_eq!(with_parser(model.clone(), None), model);
        // No parser configured: nothing read, nothing added.
        let rect = RunConfig { mask: crate::config::MaskChoice::Rectangle, ..RunConfig::default() };
        assert_eq!(parser_memory(&rect.resolve().unwrap()), None);
    }

    #[test]
    fn on_cuda_every_detection_worker_s_retinaface_copy_is_resident() {
        let r50 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/retinaface/r50.pth");
        let config = RunConfig {
            detector_weights: Some(r50),
            mask: crate::config::MaskChoice::Rectangle,
            workers: crate::config::Workers::Fixed(4),
            ..RunConfig::default()
        };
        let config = config.resolve().unwrap();
        let weights = detector_weights(&config);
        // 27.3 M parameters, resident in fp32 whatever the file stores (fp16 here).
        assert!((100_000_000..120_000_000).contains(&weights), "{weights}");
        let gpen = MemoryModel { fixed: GIB, per_face: GIB, source: ModelSource::Analytic };
        assert_eq!(run_model(gpen.clone(), &config, true, 512).fixed, GIB + 4 * weights);
        assert_eq!(run_model(gpen.clone(), &config, false, 512), gpen, "on the CPU detection is charged to RAM instead");
        let mtcnn = RunConfig { detector: crate::config::DetectorChoice::Mtcnn, ..config.config }.resolve().unwrap();
        assert_eq!(run_model(gpen.clone(), &mtcnn, true, 512), gpen);
    }

    #[test]
    fn the_identity_network_adds_its_weights_and_two_embeddings_a_face() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/arcface/weights.pth");
        let config = RunConfig {
            identity_weights: Some(golden),
            identity: crate::config::IdentityChoice::On,
            mask: crate::config::MaskChoice::Rectangle,
            detector: crate::config::DetectorChoice::Mtcnn,
            ..RunConfig::default()
        };
        let config = config.resolve().unwrap();
        let id = identity_memory(&config, 512).unwrap();
        assert!((4_000_000..7_000_000).contains(&id.weights), "{}", id.weights);
        let gpen = MemoryModel { fixed: GIB, per_face: 1 << 20, source: ModelSource::Analytic };
        let model = run_model(gpen, &config, false, 512);
        assert_eq!((model.fixed, model.per_face), (GIB + id.weights, id.per_face.max(1 << 20)));
        // A crop that is not a multiple of 256 is measured at 256: less memory than at 512.
        assert!(identity_memory(&config, 300).unwrap().per_face < id.per_face);
    }
}
