pub use crate::error::ShapeError;
use std::fmt;
use std::path::{Path, PathBuf};

/// One disagreement between a file and the network its shapes describe.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyProblem {
    Missing { key: String, expected: Vec<i64> },
    Unexpected { key: String, found: Vec<i64> },
    WrongShape { key: String, expected: Vec<i64>, found: Vec<i64> },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Missing { key, expected } => write!(f, "missing key `{key}` (expected shape {expected:?})"),
            KeyProblem::Unexpected { key, found } => write!(f, "unexpected key `{key}` with shape {found:?}"),
            KeyProblem::WrongShape { key, expected, found } => {
                write!(f, "`{key}` has shape {found:?} in the file, the network needs {expected:?}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot open weights file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not a readable model file: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{} is a GPEN discriminator (a `GPEN-BFR-*-D.pth` file, used only to fine-tune); \
         open the generator instead, e.g. GPEN-BFR-512.pth", path.display()
    )]
    Discriminator { path: PathBuf },
    #[error("{} does not hold a GPEN generator: {reason}", path.display())]
    NotGpen { path: PathBuf, reason: ShapeError },
    #[error("{} does not match {config}: {}", path.display(), summarize(problems))]
    Mismatch { path: PathBuf, config: String, problems: Vec<KeyProblem> },
}

impl CheckpointError {
    pub(crate) fn unreadable(path: &Path, reason: impl fmt::Display) -> Self {
        CheckpointError::Unreadable { path: path.into(), reason: crate::error::first_line(&reason.to_string()) }
    }
}

fn summarize(problems: &[KeyProblem]) -> String {
    const SHOWN: usize = 5;
    let mut text: Vec<String> = problems.iter().take(SHOWN).map(ToString::to_string).collect();
    if problems.len() > SHOWN {
        text.push(format!("and {} more", problems.len() - SHOWN));
    }
    text.join("; ")
}
