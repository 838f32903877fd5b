//! Reading network checkpoints, beneath every role that loads one: PyTorch pickles (zip and legacy
//! `torch.save` formats, which libtorch's own C++ loader rejects for `OrderedDict` state dicts,
//! rust-stack.md §1a) and safetensors; unwrapping training wrappers; and strict validation against
//! a network's keys and shapes with errors a user can act on. Each role infers its own network's
//! configuration from the shapes (GPEN's: `restore::checkpoint`).

mod error;
mod read;
mod validate;

pub use error::{CheckpointError, KeyProblem, ShapeError};
pub use read::{StateDict, fp32_bytes, read_shapes, read_state_dict, read_tensors, unwrap};
pub use validate::{expected_shapes, key_problems, load_strict, validate_against};

use std::collections::BTreeMap;

/// Shapes by key name, the form every check here works on.
pub type Shapes = BTreeMap<String, Vec<i64>>;
