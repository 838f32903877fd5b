//! `restore`'s options for large archives: which photos this run takes (a manifest, a shard) and
//! the run report. The logic is in [`crate::archive`]; this only turns the flags into it.

use crate::archive::report::{ReportWriter, RunInfo};
use crate::archive::shard::{self, Shard, ShardArg};
use crate::archive::{Photo, Source, manifest, walk};
use crate::config::RunConfig;
use crate::engine::worker::EngineEvent;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    /// Take only shard K of N (1-based, e.g. 2/8): the photos whose path under their folder
    /// hashes to K (FNV-1a), so every shard of the same inputs is disjoint, their union is every
    /// photo, and adding photos never moves one to another shard. `auto` reads a Slurm job array
    /// (SLURM_ARRAY_TASK_ID, _MIN, _COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<ShardArg>,
    /// With --shard auto on Kubernetes: the number of shards (the Job's completions); default:
    /// the variable GPEN_STUDIO_SHARD_COUNT.
    #[arg(long, value_name = "N", requires = "shard", value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..))]
    pub shard_count: Option<u32>,
    /// Take the photos from a manifest: one path a line (blank lines and # comments ignored),
    /// relative to --list-root; results mirror those paths under the output folder.
    #[arg(long, value_name = "FILE")]
    pub from_list: Option<PathBuf>,
    /// The folder the manifest's paths are relative to (default: the manifest's own folder).
    #[arg(long, value_name = "DIR", requires = "from_list")]
    pub list_root: Option<PathBuf>,
    /// Write a JSON report of the run (every photo's outcome, each face's result, the model and
    /// its checksum, the device, the planner's decisions, stage times), rewritten as the run goes.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// With --report: rewrite it at most every SECONDS while the run goes on (0: after every
    /// photo, unless the report is so large that this would cost more than 5 % of the run).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::archive::report::WRITE_INTERVAL.as_secs_f64(), requires = "report", value_parser = seconds)]
    pub report_every: f64,
}

fn seconds(s: &str) -> Result<f64, crate::config::ConfigError> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| crate::config::ConfigError::BadValue(format!("{s:?} is not a number of seconds (0 or more)")))
}

/// The photos a run takes.
pub struct Selection {
    pub photos: Vec<Photo>,
    /// Photos found before the shard was taken.
    pub found: usize,
    pub shard: Option<(Shard, String)>,
    /// What the walk skipped, and the shard line: for the log.
    pub notes: Vec<String>,
}

impl ArchiveArgs {
    /// Walks `inputs` (and the manifest), never taking anything inside `out_dir`, then keeps this
    /// run's shard. Keys are assigned over everything found, so they are the same in every shard.
    pub fn select(&self, inputs: &[PathBuf], recursive: bool, out_dir: &Path) -> anyhow::Result<Selection> {
        let shard = match self.shard {
            None => None,
            Some(ShardArg::Fixed(s)) => {
                if self.shard_count.is_some_and(|c| c != s.count) {
                    anyhow::bail!("--shard-count {} contradicts --shard {s}", self.shard_count.unwrap_or(0));
                }
                Some((s, "--shard".to_string()))
            }
            Some(ShardArg::Auto) => Some(shard::from_env(|k| std::env::var(k).ok(), self.shard_count).map_err(anyhow::Error::msg)?),
        };
        let mut sources: Vec<Source> = inputs.iter().cloned().map(Source::given).collect();
        if let Some(list) = &self.from_list {
            let (entries, _root) = manifest::read(list, self.list_root.as_deref()).map_err(anyhow::Error::msg)?;
            if entries.is_empty() && inputs.is_empty() {
                anyhow::bail!("the list {} names no photos", list.display());
            }
            sources.extend(entries);
        }
        if let Ok(out) = out_dir.canonicalize()
            && let Some(s) = sources.iter().find(|s| s.path.canonicalize().is_ok_and(|p| p.starts_with(&out)))
        {
            anyhow::bail!(
                "{} is inside the output folder {}: the result would replace the input; choose another output folder",
                s.path.display(),
                out_dir.display()
            );
        }
        let found = walk::walk(&sources, recursive, Some(out_dir));
        let total = found.photos.len();
        let mut notes: Vec<String> = found.notes.into_iter().map(|n| format!("note: {n}")).collect();
        let photos = match &shard {
            Some((s, from)) => {
                let mine: Vec<Photo> = found.photos.into_iter().filter(|p| s.takes(&p.rel)).collect();
                notes.push(format!("shard {s} ({from}): {} of the {total} photos found", mine.len()));
                mine
            }
            None => found.photos,
        };
        Ok(Selection { photos, found: total, shard, notes })
    }
}

impl ArchiveArgs {
    /// With `--report`: the report of a run of `photos` (photo id = index), written once now.
    pub fn start_report(
        &self,
        shard: &Option<(Shard, String)>,
        photos: &[Photo],
        config: &RunConfig,
    ) -> anyhow::Result<Option<ReportWriter>> {
        let Some(path) = &self.report else { return Ok(None) };
        let outputs = crate::archive::inputs::plan_outputs(photos, &config.out_dir, config.output_format().extension());
        let info = RunInfo { shard: shard.clone(), out_dir: &config.out_dir, weights: &config.weights };
        let writer = ReportWriter::create(path, photos, &outputs, info)
            .map_err(|e| anyhow::anyhow!("cannot write the report {}: {e}", path.display()))?;
        Ok(Some(writer.rewritten_every(std::time::Duration::from_secs_f64(self.report_every))))
    }

    /// A run whose report could not be written at the end fails (a shard's report is its record).
    pub fn check_report(&self, report: &Option<ReportWriter>) -> anyhow::Result<()> {
        match report.as_ref().and_then(|r| r.write_error()) {
            Some(e) => anyhow::bail!("the report {} could not be written: {e}", self.report.as_deref().unwrap_or(Path::new("")).display()),
            None => Ok(()),
        }
    }
}

/// A shard with no photos (more shards than photos): its report says so, and it succeeds.
pub fn nothing_to_do(report: Option<ReportWriter>) -> std::process::ExitCode {
    if let Some(mut r) = report {
        r.finished(&Default::default());
    }
    eprintln!("no photos in this shard; nothing to do");
    std::process::ExitCode::SUCCESS
}

/// Folds an engine event into the run's report (the report speaks of photos and faces, not of the
/// engine's events, so the archive stays beneath the engine).
pub fn record(report: &mut ReportWriter, event: &EngineEvent) {
    match event {
        EngineEvent::ModelLoaded { config, device, precision } => report.model_loaded(format!("{config}, {precision}"), device.clone()),
        EngineEvent::ModelError(e) => report.setup_failed(e.to_string()),
        EngineEvent::Recommendation { batch, reason } => report.planner_decision(*batch, reason.clone()),
        EngineEvent::FacesFound { id, faces, .. } => report.faces_found(*id, faces),
        EngineEvent::FaceFailed { id, face, error } => report.face_note(*id, *face, true, error.clone()),
        EngineEvent::CpuFallback { id, face } => {
            report.face_note(*id, *face, false, "did not fit the GPU alone; restored on the CPU".into())
        }
        EngineEvent::MaskFallback { id, face, error } => {
            report.face_note(*id, *face, false, format!("no parsing mask ({error}); pasted with the rectangle"))
        }
        EngineEvent::IdentityUnmeasured { id, face, error } => {
            report.face_note(*id, *face, false, format!("identity not measured ({error}); pasted as restored"))
        }
        EngineEvent::PhotoEnded { id, outcome, .. } => report.photo_ended(*id, outcome),
        EngineEvent::Finished(summary) => report.finished(summary),
        _ => {}
    }
}
