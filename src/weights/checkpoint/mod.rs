//! Reading GPEN generator checkpoints: PyTorch pickles (zip and legacy `torch.save` formats, which
//! libtorch's own C++ loader rejects for `OrderedDict` state dicts, rust-stack.md §1a) and
//! safetensors; unwrapping training wrappers; inferring the configuration from tensor shapes; and
//! strict validation with errors a user can act on.

mod error;
mod infer;
mod read;
mod validate;

pub use error::{CheckpointError, KeyProblem, ShapeError};
pub use infer::infer_config;
pub use read::{StateDict, fp32_bytes, read_shapes, read_state_dict, read_tensors, unwrap};
pub use validate::{expected_shapes, key_problems, load_strict, validate_against};

use crate::restore::network::{FullGenerator, GpenConfig};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, nn};

/// Shapes by key name, the form every check here works on.
pub type Shapes = BTreeMap<String, Vec<i64>>;

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
    validate_against(path, &config, &expected_shapes(&vs), &shapes)?;
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
