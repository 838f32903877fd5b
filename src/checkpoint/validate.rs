use super::{CheckpointError, KeyProblem, Shapes};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor, nn};

/// Every key the network registered, with its shape.
pub fn expected_shapes(vs: &nn::VarStore) -> Shapes {
    vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect()
}

/// Strict comparison of a GPEN-style network (`network` names it in the error): every key present
/// with its exact shape and nothing extra. The 4x4 blur kernels are constants the network
/// recomputes, so a file may leave them out.
pub fn validate_against(path: &Path, network: &str, expected: &Shapes, found: &Shapes) -> Result<(), CheckpointError> {
    let problems = key_problems(expected, found, |key| key.ends_with(".kernel"));
    if problems.is_empty() { Ok(()) } else { Err(CheckpointError::Mismatch { path: path.into(), config: network.into(), problems }) }
}

/// Every key of `expected` missing from `found` (unless `may_be_absent` says it may be) or there
/// with another shape, and every key of `found` the network does not have.
pub fn key_problems(expected: &Shapes, found: &Shapes, may_be_absent: impl Fn(&str) -> bool) -> Vec<KeyProblem> {
    let mut problems = Vec::new();
    for (key, want) in expected {
        match found.get(key) {
            None if may_be_absent(key) => {}
            None => problems.push(KeyProblem::Missing { key: key.clone(), expected: want.clone() }),
            Some(got) if got != want => {
                problems.push(KeyProblem::WrongShape { key: key.clone(), expected: want.clone(), found: got.clone() })
            }
            Some(_) => {}
        }
    }
    for (key, got) in found {
        if !expected.contains_key(key) {
            problems.push(KeyProblem::Unexpected { key: key.clone(), found: got.clone() });
        }
    }
    problems
}

/// Loads `found` into `vs` strictly (see [`key_problems`]; `network` names it in the error),
/// converting every tensor to fp32, then freezes the store. Variables absent from `found` (those
/// `may_be_absent` allows) keep their initial values.
pub fn load_strict(
    vs: &mut nn::VarStore,
    found: &BTreeMap<String, Tensor>,
    path: &Path,
    network: &str,
    may_be_absent: impl Fn(&str) -> bool,
) -> Result<(), CheckpointError> {
    let shapes: Shapes = found.iter().map(|(k, t)| (k.clone(), t.size())).collect();
    let problems = key_problems(&expected_shapes(vs), &shapes, may_be_absent);
    if !problems.is_empty() {
        return Err(CheckpointError::Mismatch { path: path.into(), config: network.into(), problems });
    }
    tch::no_grad(|| -> Result<(), CheckpointError> {
        for (name, mut var) in vs.variables() {
            let Some(src) = found.get(&name) else { continue };
            let src = src.f_to_kind(Kind::Float).map_err(|e| CheckpointError::unreadable(path, e))?;
            var.f_copy_(&src).map_err(|e| CheckpointError::unreadable(path, e))?;
        }
        Ok(())
    })?;
    vs.freeze();
    Ok(())
}
