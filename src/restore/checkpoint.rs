//! GPEN's generator from a checkpoint: its configuration worked out from the tensor shapes, the
//! strict load into a fresh network, and random weights for benchmarks.

use crate::checkpoint::{CheckpointError, ShapeError, Shapes, expected_shapes, read_state_dict, validate_against};
use crate::restore::network::{FullGenerator, GpenConfig};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, nn};

/// A GPEN generator with its weights loaded, on its device.
#[derive(Debug)]
pub struct LoadedGenerator {
    pub vs: nn::VarStore,
    pub net: FullGenerator,
}

/// Reads `path`, infers its configuration, checks every key and shape, and copies the weights into a
/// fresh network on `device`.
pub fn load_generator(path: &Path, device: Device) -> Result<LoadedGenerator, CheckpointError> {
    let state = read_state_dict(path)?;
    let shapes = state.shapes();
    let config = infer_config(&shapes).map_err(|reason| CheckpointError::NotGpen { path: path.into(), reason })?;
    let mut vs = nn::VarStore::new(device);
    let net = FullGenerator::new(&vs.root(), config);
    validate_against(path, &config.to_string(), &expected_shapes(&vs), &shapes)?;
    let tensors: BTreeMap<&str, &tch::Tensor> = state.tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    tch::no_grad(|| -> Result<(), CheckpointError> {
        for (name, mut var) in vs.variables() {
            // Blur-kernel buffers may be absent (they are constants); the computed values stay then.
            let Some(src) = tensors.get(name.as_str()) else { continue };
            let src = src.f_to_kind(Kind::Float).map_err(|e| CheckpointError::unreadable(path, e))?;
            var.f_copy_(&src).map_err(|e| CheckpointError::unreadable(path, e))?;
        }
        Ok(())
    })?;
    vs.freeze();
    Ok(LoadedGenerator { vs, net })
}

/// A generator with GPEN's initial random weights, for benchmarks (speed does not depend on values).
pub fn random_generator(config: GpenConfig, device: Device, seed: i64) -> Result<LoadedGenerator, ShapeError> {
    config.validate()?;
    tch::manual_seed(seed);
    let mut vs = nn::VarStore::new(device);
    let net = FullGenerator::new(&vs.root(), config);
    vs.freeze();
    Ok(LoadedGenerator { vs, net })
}

/// Works out `FullGenerator`'s constructor arguments from tensor shapes alone, so a user can open any
/// GPEN generator without knowing its size or width. The result is then checked key by key.
///
/// - size: the encoder has `ecd0 .. ecd{log2(size)-2}`;
/// - narrow: the 4x4 constant has `512 * narrow` channels;
/// - channel_multiplier: the 64 px layers have `256 * channel_multiplier * narrow` channels
///   (unobservable below 64 px, where every multiplier builds the same network);
/// - style_dim and n_mlp: the mapping network `generator.style.{1..n_mlp}`.
pub fn infer_config(shapes: &Shapes) -> Result<GpenConfig, ShapeError> {
    let shape = |key: &str| shapes.get(key).ok_or_else(|| format!("it has no `{key}` tensor"));
    let top_ecd = shapes
        .keys()
        .filter_map(|k| k.strip_prefix("ecd")?.split('.').next()?.parse::<u32>().ok())
        .max()
        .ok_or("it has no encoder layers (`ecd0.*`)")?;
    let log_size = top_ecd + 2;
    if !(3..=11).contains(&log_size) {
        return Err(format!("its encoder has {} layers, which matches no GPEN size", top_ecd + 1).into());
    }
    let size = 1i64 << log_size;

    let input = shape("generator.input.input")?;
    let c4 = *input.get(1).ok_or("`generator.input.input` is not [1, C, 4, 4]")?;
    let narrow = c4 as f64 / 512.0;

    let style = shape("generator.style.1.weight")?;
    let style_dim = style[0];
    let n_mlp = shapes.keys().filter_map(|k| k.strip_prefix("generator.style.")?.split('.').next()?.parse::<i64>().ok()).max().unwrap_or(0);

    let channel_multiplier = if size >= 64 {
        // convs.{2(i-3)} is the upsampling conv into 2^i px; 64 px is i = 6.
        let w = shape("generator.convs.6.conv.weight")?;
        let c64 = *w.get(1).ok_or("`generator.convs.6.conv.weight` has the wrong rank")?;
        ((c64 as f64 / (256.0 * narrow)).round() as i64).max(1)
    } else {
        1
    };
    let config = GpenConfig { size, style_dim, n_mlp, channel_multiplier, narrow };
    config.validate()?;
    Ok(config)
}
