use super::{CheckpointError, KeyProblem, Shapes};
use crate::model::GpenConfig;
use std::path::Path;
use tch::nn;

/// Every key the network registered, with its shape.
pub fn expected_shapes(vs: &nn::VarStore) -> Shapes {
    vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect()
}

/// Strict comparison: every key present with its exact shape and nothing extra. The 4x4 blur
/// kernels are constants the network recomputes, so a file may leave them out.
pub fn validate_against(path: &Path, config: &GpenConfig, expected: &Shapes, found: &Shapes) -> Result<(), CheckpointError> {
    let mut problems = Vec::new();
    for (key, want) in expected {
        match found.get(key) {
            None if key.ends_with(".kernel") => {}
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
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckpointError::Mismatch { path: path.into(), config: config.to_string(), problems })
    }
}
