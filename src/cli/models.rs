//! `models`: the catalogue of GPEN weights, their download, verification and import.

use crate::weights::{Catalogue, DownloadOptions, ModelStore};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the known GPEN generators and add-ons (RetinaFace, ParseNet): configuration, installed,
    /// checksum recorded, path.
    List,
    /// Download a generator (e.g. GPEN-BFR-512) or an add-on (RetinaFace-R50, ParseNet-latest),
    /// resuming an interrupted download, and verify it.
    Download {
        /// Catalogue name: GPEN-BFR-256, GPEN-BFR-512, GPEN-Colorization-1024, ... (see `models list`).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Check installed files against their recorded SHA-256 and re-validate keys and shapes.
    Verify {
        /// Files to check (default: every installed model).
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Validate a weights file fetched by hand and copy it into the models folder.
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The catalogue model it is (default: from the file name, or from its configuration).
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
    },
}

pub fn run(command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let catalogue = Catalogue::builtin();
    let store = ModelStore::default();
    match command {
        ModelsCommand::List => list(&catalogue, &store),
        ModelsCommand::Download { name } => {
            let entry = catalogue.find(&name)?;
            let cancel = Arc::new(AtomicBool::new(false));
            let flag = cancel.clone();
            // Ctrl-C stops between chunks and keeps the `.part` for the next run.
            let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
            let options = DownloadOptions { cancel: Some(cancel), ..DownloadOptions::default() };
            if let Some(partial) = std::fs::metadata(store.part_of(entry)).ok().map(|m| m.len()) {
                eprintln!("resuming {} from {partial} bytes", entry.file);
            }
            let path = match super::exit::with_sigpipe_as_error(|| crate::weights::download(entry, &store, &options)) {
                Err(e @ crate::weights::ModelError::Cancelled { .. }) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(super::exit::CANCELLED));
                }
                other => other.map_err(not_installed)?,
            };
            println!("{} installed and verified: {}", entry.name, path.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify { files } => {
            let files = if files.is_empty() { store.installed_files(&catalogue)? } else { files };
            if files.is_empty() {
                println!("no models installed in {} (see `gpen-studio models list`)", store.dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            let mut failed = 0;
            for path in &files {
                match store.verify(&catalogue, path) {
                    Ok(v) => {
                        let note = match (v.had_record, v.recorded_now) {
                            (true, _) => "matches its recorded SHA-256",
                            (false, true) => "SHA-256 recorded now",
                            (false, false) => "valid; no SHA-256 is recorded outside the models folder",
                        };
                        println!("ok      {}: {}, {note} ({})", path.display(), v.validated.description, &v.sha256[..16]);
                    }
                    Err(e) => {
                        failed += 1;
                        println!("FAILED  {e}");
                    }
                }
            }
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ModelsCommand::Import { file, name } => {
            let (entry, dest) = store.import(&catalogue, &file, name.as_deref()).map_err(not_installed)?;
            println!("{} imported and verified: {}", entry.name, dest.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(catalogue: &Catalogue, store: &ModelStore) -> anyhow::Result<ExitCode> {
    println!("models folder: {}", store.dir.display());
    // The detector's weights are not catalogue entries (they ship with the build or the package),
    // but a missing folder is the first thing to rule out when photos show no faces.
    let mtcnn = crate::detect::mtcnn::default_models_dir();
    let found = if crate::detect::mtcnn::has_weights(&mtcnn) { "ready" } else { "missing (run `make setup`, or set GPEN_MTCNN_DIR)" };
    println!("face detector (MTCNN) weights: {} {found}\n", mtcnn.display());
    println!("{:<24} {:<44} {:<10} {:<10} path / source", "name", "configuration / kind", "installed", "verified");
    for s in store.status(catalogue).map_err(anyhow::Error::from)? {
        let installed = match (s.installed, s.partial) {
            (true, _) => "yes".to_string(),
            (false, Some(n)) => format!("partial {}M", n / 1_000_000),
            (false, None) => "no".to_string(),
        };
        let verified = match (&s.record, s.installed) {
            (Some(_), true) => "recorded",
            (None, true) => "no record",
            _ => "-",
        };
        let source = if s.installed {
            s.path.display().to_string()
        } else if s.entry.url.is_some() {
            format!("`gpen-studio models download {}`", s.entry.name)
        } else {
            format!("ModelScope {} (`models download {}` explains)", crate::weights::MODELSCOPE_REPO, s.entry.name)
        };
        println!("{:<24} {:<44} {:<10} {:<10} {source}", s.entry.name, s.entry.kind.to_string(), installed, verified);
    }
    println!("\nadd-ons (optional, GPEN's own face path):");
    for e in catalogue.entries.iter().filter(|e| e.is_addon()) {
        println!("  {}: {}", e.name, e.task);
    }
    Ok(ExitCode::SUCCESS)
}

/// Says that a refused file left nothing behind.
fn not_installed(err: crate::weights::ModelError) -> anyhow::Error {
    if err.is_wrong_content() && !matches!(err, crate::weights::ModelError::WebPage { .. }) {
        anyhow::anyhow!("{err}; nothing was installed")
    } else {
        err.into()
    }
}
