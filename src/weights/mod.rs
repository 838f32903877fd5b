//! The model manager: a catalogue of GPEN's weights files, a store in `data_dir()/models` with the
//! SHA-256 of every file recorded on its first successful validation (`checksums.json`), verified
//! and resumable downloads, and import of files fetched by hand.
//!
//! A file is accepted only when it loads as a GPEN generator with the catalogue's configuration
//! (every key and shape, through [`crate::checkpoint`]); then it is hashed, and only then it takes
//! its final name.

mod catalogue;
mod download;
mod store;

pub use catalogue::{Catalogue, MODELSCOPE_REPO, ModelEntry, ModelKind, OSS_BASE, Task};
pub use download::{DownloadOptions, Progress, download};
pub use store::{Checksums, ModelStatus, ModelStore, Record, Verified, sha256_file};

use crate::checkpoint::{self, CheckpointError};
use crate::restore::network::{FullGenerator, GpenConfig};
use std::path::{Path, PathBuf};

/// Why a model could not be fetched, installed or verified. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model '{name}'; known: {known}")]
    UnknownModel { name: String, known: String },
    #[error("{name} cannot be downloaded automatically.\n{instruction}")]
    ManualOnly { name: String, instruction: String },
    #[error(
        "cannot reach {url}: {reason}.\n\
         Without a network connection here: download that URL on another machine and either save it as\n  {}\n\
         or run `gpen-studio models import FILE` with the downloaded file.",
        dest.display()
    )]
    NoNetwork { url: String, reason: String, dest: PathBuf },
    #[error("{url} answered HTTP {status}; the file may have moved (see README, \"Model weights\")")]
    Http { url: String, status: u16 },
    #[error(
        "got a web page, not a model, from {source_name} (an error page, a login or a captive portal?); \
         nothing was installed"
    )]
    WebPage { source_name: String },
    #[error(
        "the download of {url} was interrupted after {got} of {} bytes ({reason}); run the same command \
         again to resume (the partial file {} is kept)",
        expected.map(|n| n.to_string()).unwrap_or_else(|| "?".into()), part.display()
    )]
    Interrupted { url: String, got: u64, expected: Option<u64>, reason: String, part: PathBuf },
    #[error("download cancelled after {got} bytes; the partial file {} is kept to resume", part.display())]
    Cancelled { got: u64, part: PathBuf },
    /// Not a GPEN generator (or a damaged one). The cause is part of the message, not a `source`,
    /// so `{:#}` does not print it twice.
    #[error("{cause}")]
    Invalid { cause: CheckpointError },
    /// Not the add-on network it should be; the loader's message names the file and the problem.
    #[error("{reason}")]
    InvalidAddon { reason: String },
    #[error("{} is {found}, but {name} must be {expected}", path.display())]
    WrongConfig { path: PathBuf, name: String, found: Box<ModelKind>, expected: Box<ModelKind> },
    #[error(
        "{} changed since it was installed: SHA-256 {actual}, recorded {recorded}; download or import it again",
        path.display()
    )]
    HashMismatch { path: PathBuf, recorded: String, actual: String },
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{0}")]
    Other(String),
}

impl ModelError {
    /// True when the file itself was wrong (not a network or disk problem): downloads and imports
    /// then install nothing and keep nothing.
    pub fn is_wrong_content(&self) -> bool {
        matches!(
            self,
            ModelError::Invalid { .. } | ModelError::InvalidAddon { .. } | ModelError::WrongConfig { .. } | ModelError::WebPage { .. }
        )
    }

    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
        move |error| ModelError::Io { path: path.into(), error }
    }
}

/// True when the bytes start like an HTML or XML document (a web page or an S3/OSS error body).
pub fn looks_like_web_page(head: &[u8]) -> bool {
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &head[i..]);
    // A UTF-8 byte-order mark may precede the markup.
    let start = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(start);
    let lower: Vec<u8> = start.iter().take(64).map(u8::to_ascii_lowercase).collect();
    [&b"<!doctype"[..], b"<html", b"<?xml", b"<head", b"<body", b"<error"].iter().any(|p| lower.starts_with(p))
}

/// Checks that `path` is a GPEN generator: every key and shape of `expected` when given (the
/// catalogue's configuration), else of the configuration its shapes describe. Returns the
/// configuration. `source_name` names the file in messages about web pages.
pub fn validate_model(path: &Path, expected: Option<(&str, GpenConfig)>) -> Result<GpenConfig, ModelError> {
    let mut head = [0u8; 512];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(ModelError::io(path))?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]).map_err(ModelError::io(path))? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    if looks_like_web_page(&head[..n]) {
        return Err(ModelError::WebPage { source_name: path.display().to_string() });
    }
    let state = checkpoint::read_state_dict(path).map_err(|cause| ModelError::Invalid { cause })?;
    let shapes = state.shapes();
    drop(state);
    let found = crate::restore::checkpoint::infer_config(&shapes)
        .map_err(|reason| ModelError::Invalid { cause: CheckpointError::NotGpen { path: path.into(), reason } })?;
    let config = match expected {
        Some((name, want)) if want != found => {
            return Err(ModelError::WrongConfig {
                path: path.into(),
                name: name.into(),
                found: Box::new(ModelKind::Generator(found)),
                expected: Box::new(ModelKind::Generator(want)),
            });
        }
        Some((_, want)) => want,
        None => found,
    };
    // The network's own key set: built on the CPU without running it.
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = tch::no_grad(|| FullGenerator::new(&vs.root(), config));
    checkpoint::validate_against(path, &config.to_string(), &checkpoint::expected_shapes(&vs), &shapes)
        .map_err(|cause| ModelError::Invalid { cause })?;
    Ok(config)
}

/// What a file validated as: the generator's configuration, or the add-on network it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub kind: ModelKind,
    /// For messages and `checksums.json`: "GPEN 512 ...", "RetinaFace ResNet-50", "ParseNet 512".
    pub description: String,
}

/// Checks that `path` loads as what `kind` says; with `None`, as whatever it is (a generator, else
/// RetinaFace, ParseNet, RRDBNet or ArcFace). Add-ons are checked by loading them on the CPU, with every key and
/// shape, as a run would.
pub fn validate_file(path: &Path, name: Option<&str>, kind: Option<ModelKind>) -> Result<Validated, ModelError> {
    let generator = |expected: Option<GpenConfig>| {
        validate_model(path, expected.map(|c| (name.unwrap_or("the model"), c)))
            .map(|c| Validated { kind: ModelKind::Generator(c), description: c.to_string() })
    };
    let detector = || {
        crate::detect::RetinaFace::load(path, tch::Device::Cpu)
            .map(|r| Validated { kind: ModelKind::Detector, description: format!("RetinaFace {}", r.backbone().name()) })
            .map_err(|e| ModelError::InvalidAddon { reason: e.to_string() })
    };
    let parser = || {
        crate::mask::parser::check_file(path)
            .map(|description| Validated { kind: ModelKind::FaceParser, description })
            .map_err(|e| ModelError::InvalidAddon { reason: e.to_string() })
    };
    let identity = || {
        crate::identity::check_file(path)
            .map(|description| Validated { kind: ModelKind::Identity, description })
            .map_err(|e| ModelError::InvalidAddon { reason: e.to_string() })
    };
    let upscaler = |want: Option<u32>| {
        let up = crate::upscale::Upscaler::load(path, tch::Device::Cpu).map_err(|e| ModelError::InvalidAddon { reason: e.to_string() })?;
        let c = up.config();
        match want {
            Some(w) if w != up.scale() => {
                Err(ModelError::InvalidAddon { reason: format!("{} upscales ×{}, not ×{w}", path.display(), up.scale()) })
            }
            _ => Ok(Validated {
                kind: ModelKind::Upscaler { scale: up.scale() },
                description: format!("RRDBNet ×{} ({} features, {} blocks)", up.scale(), c.num_feat, c.num_block),
            }),
        }
    };
    match kind {
        Some(ModelKind::Generator(c)) => generator(Some(c)),
        Some(ModelKind::Upscaler { scale }) => web_page_check(path).and_then(|()| upscaler(Some(scale))),
        Some(ModelKind::Detector) => web_page_check(path).and_then(|()| detector()),
        Some(ModelKind::FaceParser) => web_page_check(path).and_then(|()| parser()),
        Some(ModelKind::Identity) => web_page_check(path).and_then(|()| identity()),
        None => match generator(None) {
            Err(ModelError::Invalid { cause: CheckpointError::NotGpen { .. } }) => {
                detector().or_else(|_| parser()).or_else(|_| upscaler(None)).or_else(|_| identity()).map_err(|_| ModelError::InvalidAddon {
                    reason: format!("{} is neither a GPEN generator nor a RetinaFace, ParseNet, RRDBNet or ArcFace file", path.display()),
                })
            }
            other => other,
        },
    }
}

fn web_page_check(path: &Path) -> Result<(), ModelError> {
    let mut head = [0u8; 512];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(ModelError::io(path))?;
        f.read(&mut head).map_err(ModelError::io(path))?
    };
    if looks_like_web_page(&head[..n]) { Err(ModelError::WebPage { source_name: path.display().to_string() }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_pages_are_recognised() {
        assert!(looks_like_web_page(b"  <!DOCTYPE html><html>"));
        assert!(looks_like_web_page(b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"));
        assert!(looks_like_web_page(b"\xEF\xBB\xBF<html>"));
        assert!(!looks_like_web_page(b"PK\x03\x04archive/data.pkl"));
        assert!(!looks_like_web_page(b"\x80\x02\x8a\x0alz"));
        assert!(!looks_like_web_page(b""));
    }
}
