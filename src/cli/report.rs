//! `report merge`: the reports of a sharded run (and of reruns) folded into totals, and the
//! photos that failed written as a manifest for `restore --from-list`. `report sheet`: the faces of
//! those reports on one HTML page, worst first, for review.

use crate::archive::{manifest, report};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Fold the reports of shards (and of their reruns) together: totals per outcome and of faces;
    /// the exit status is 1 when any photo's latest outcome is a failure.
    Merge(MergeArgs),
    /// Write a review sheet: one HTML page (thumbnails beside it) of every face, before | after,
    /// with its identity, strength and result; softened, failed and least-alike faces first.
    Sheet(SheetArgs),
}

#[derive(Debug, Args)]
pub struct SheetArgs {
    /// Report files written by `restore --report` (the reports of shards are merged first).
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Folder for index.html and its faces/ thumbnails (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: PathBuf,
    /// Only the first N faces of the order (the ones that most need a look).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Report files written by `restore --report`.
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the photos that failed to this file, one absolute path a line, for
    /// `restore --from-list FILE --list-root ROOT` (the root is named in its first line).
    #[arg(long, value_name = "OUT.txt")]
    pub failed_list: Option<PathBuf>,
}

pub fn run(cmd: ReportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReportCommand::Merge(args) => merge(args),
        ReportCommand::Sheet(args) => sheet(args),
    }
}

fn sheet(args: SheetArgs) -> anyhow::Result<ExitCode> {
    let reports = args.reports.iter().map(|p| report::read(p)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let merged = report::merge(&reports);
    let names: Vec<String> =
        args.reports.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    let title = format!("gpen-studio review sheet: {}", names.join(", "));
    let (page, faces) = crate::archive::sheet::write(&merged.photos, &args.output, &title, args.limit)
        .map_err(|e| anyhow::anyhow!("cannot write the sheet into {}: {e}", args.output.display()))?;
    println!("{faces} faces on {}", page.display());
    Ok(ExitCode::SUCCESS)
}

fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let reports = args.reports.iter().map(|p| report::read(p)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let merged = report::merge(&reports);
    let t = &merged.totals;
    println!("{} reports ({} of runs that did not finish)", merged.reports, merged.unfinished);
    println!(
        "photos {}: restored {}, no faces {}, already done {}, failed {}, not reported {}",
        t.photos, t.restored, t.no_faces, t.already_done, t.failed, t.pending
    );
    println!("faces restored {}, failed {}", t.faces_restored, t.faces_failed);
    for p in merged.failed() {
        println!("failed: {}: {}", p.input.display(), p.reason.as_deref().unwrap_or("(no reason recorded)"));
    }
    if let Some(file) = &args.failed_list {
        let failed: Vec<PathBuf> = merged.failed().map(|p| p.input.clone()).collect();
        let header = match merged.failed_root() {
            Some(root) => format!(
                "{} failed photos; rerun with: gpen-studio restore --from-list {} --list-root {} -o OUTDIR\n(the same root keeps their results where the first run put them)",
                failed.len(),
                file.display(),
                root.display()
            ),
            None => {
                format!("{} failed photos (from several input folders: their results go to the top of the output folder)", failed.len())
            }
        };
        manifest::write(file, &header, &failed).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        println!("{} failed photos listed in {}", failed.len(), file.display());
    }
    Ok(if t.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
