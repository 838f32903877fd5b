//! The run report (`restore --report FILE.json`): every photo's outcome and each face's result,
//! with the model, the device, the planner's decisions and the stage times. It is rewritten
//! atomically as the run goes (at most every [`WRITE_INTERVAL`], and at the end), so a shard that
//! is killed leaves a report of everything it finished. `report merge` folds the reports of many
//! shards (and of reruns) into totals and a list of the photos that failed.

use super::walk::Photo;
use crate::pipeline::{Outcome, PhotoId, Summary};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a running report is rewritten at most by default (each photo's end triggers it;
/// `--report-every` sets another interval). A report so large that writing it takes longer than
/// a 20th of the interval waits 20 times its writing time instead, so rewriting the report of a
/// huge shard never costs more than 5 % of the run.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(2);

/// What a report file holds (the schema is in the README, "Large archives").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since 1970 (UTC) when the run started and when this report was written.
    pub started_unix: f64,
    pub updated_unix: f64,
    /// False while the run goes on, and in the report of a run that was killed.
    pub finished: bool,
    /// `K/N`, or null for a run of all photos.
    pub shard: Option<String>,
    pub shard_source: Option<String>,
    pub output_dir: PathBuf,
    /// The device the model runs on (null until it is loaded).
    pub device: Option<String>,
    pub model: ModelInfo,
    /// Batch sizes the planner chose, and why, in order.
    pub planner: Vec<PlannerDecision>,
    /// Busy seconds per stage, summed over workers (filled when the run ends).
    pub stage_seconds: BTreeMap<String, f64>,
    /// Set when the run could not start (the model did not load, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Photos that ended, in the order they ended.
    pub photos: Vec<PhotoRecord>,
    pub totals: Totals,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    /// The generator's configuration, as loaded (null until it is).
    pub name: Option<String>,
    /// Lower-case hex SHA-256 of the weights file.
    pub sha256: Option<String>,
    /// "models store" (recorded in checksums.json beside the file, same size) or "computed".
    pub sha256_source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannerDecision {
    pub batch: usize,
    pub reason: String,
    /// Seconds into the run.
    pub at_seconds: f64,
}

/// A photo's end as a report records it (the engine's [`Outcome`] without its details).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoOutcome {
    Restored,
    NoFaces,
    AlreadyDone,
    Failed,
}

impl PhotoOutcome {
    /// How a photo's end is recorded; a cancelled photo is not (it was not tried to the end, and a
    /// rerun does it).
    pub fn of(outcome: &Outcome) -> Option<Self> {
        match outcome {
            Outcome::Restored { .. } => Some(PhotoOutcome::Restored),
            Outcome::NoFaces { .. } => Some(PhotoOutcome::NoFaces),
            Outcome::AlreadyDone { .. } => Some(PhotoOutcome::AlreadyDone),
            Outcome::Failed { .. } => Some(PhotoOutcome::Failed),
            Outcome::Cancelled => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceResult {
    Restored,
    Failed,
    /// Restored, but the photo failed later (nothing was written for it).
    NotWritten,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhotoRecord {
    /// The input file, absolute.
    pub input: PathBuf,
    /// Its path under the folder (or list root) it was found in; `input` ends with it.
    pub rel: PathBuf,
    /// Its result, absolute (for a failed photo: where the result would have gone).
    pub output: PathBuf,
    pub outcome: PhotoOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub faces: Vec<FaceRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaceRecord {
    /// `[x1, y1, x2, y2]` in the input's pixels (also with `--upscale`, whose result is larger).
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    pub result: FaceResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How much the face as pasted still looks like the original (when the identity network
    /// measured it): the similarity at the strength asked for and at the strength used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::identity::FaceIdentity>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Photos of the run (of this shard).
    pub photos: usize,
    pub restored: usize,
    pub no_faces: usize,
    pub already_done: usize,
    pub failed: usize,
    /// Not ended (yet, or ever: cancelled or killed).
    pub pending: usize,
    pub faces_restored: usize,
    pub faces_failed: usize,
    /// Faces measured below the identity guard's floor, and those it softened.
    #[serde(default)]
    pub faces_below_floor: usize,
    #[serde(default)]
    pub faces_softened: usize,
}

impl Totals {
    fn of(photos: &[PhotoRecord], total: usize) -> Totals {
        let mut t = Totals { photos: total, ..Totals::default() };
        for p in photos {
            match p.outcome {
                PhotoOutcome::Restored => t.restored += 1,
                PhotoOutcome::NoFaces => t.no_faces += 1,
                PhotoOutcome::AlreadyDone => t.already_done += 1,
                PhotoOutcome::Failed => t.failed += 1,
            }
            t.faces_restored += p.faces.iter().filter(|f| f.result == FaceResult::Restored).count();
            t.faces_failed += p.faces.iter().filter(|f| f.result == FaceResult::Failed).count();
            let measured = || p.faces.iter().filter_map(|f| f.identity);
            t.faces_below_floor += measured().filter(|i| i.below_floor).count();
            t.faces_softened += measured().filter(|i| i.softened).count();
        }
        t.pending = total.saturating_sub(photos.len());
        t
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "photos {}: restored {}, no faces {}, already done {}, failed {}, pending {}; faces restored {}, failed {}",
            self.photos, self.restored, self.no_faces, self.already_done, self.failed, self.pending, self.faces_restored, self.faces_failed
        )?;
        if self.faces_below_floor > 0 {
            write!(f, "; below the identity floor {} (softened {})", self.faces_below_floor, self.faces_softened)?;
        }
        Ok(())
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The SHA-256 of `weights` and where it comes from: the models store's record beside the file
/// when its size matches, else computed now.
pub fn model_checksum(weights: &Path) -> (Option<String>, Option<String>) {
    let dir = weights.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = weights.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = std::fs::metadata(weights).map(|m| m.len()).ok();
    if let Ok(records) = crate::weights::ModelStore::new(dir).checksums()
        && let Some(r) = records.get(&name)
        && Some(r.bytes) == bytes
    {
        return (Some(r.sha256.clone()), Some("models store".into()));
    }
    match crate::weights::sha256_file(weights) {
        Ok((hex, _)) => (Some(hex), Some("computed".into())),
        Err(_) => (None, None),
    }
}

/// A photo in flight: its faces as found, and what happened to each.
#[derive(Default)]
struct Pending {
    faces: Vec<FaceRecord>,
}

/// Keeps the report of a running `restore` and writes it.
pub struct ReportWriter {
    path: PathBuf,
    report: Report,
    /// By photo id: the photo and its output.
    photos: Vec<(Photo, PathBuf)>,
    pending: HashMap<PhotoId, Pending>,
    started: Instant,
    last_write: Option<Instant>,
    /// The shortest time between two rewrites while the run goes on.
    interval: Duration,
    /// How long the last write took.
    write_cost: Duration,
    write_error: Option<String>,
}

/// What a report starts with.
pub struct RunInfo<'a> {
    pub shard: Option<(super::Shard, String)>,
    pub out_dir: &'a Path,
    pub weights: &'a Path,
}

impl ReportWriter {
    /// Starts the report of a run of `photos` (photo id = index) with `outputs`, and writes it.
    pub fn create(path: &Path, photos: &[Photo], outputs: &[PathBuf], info: RunInfo) -> std::io::Result<ReportWriter> {
        let (sha256, sha256_source) = model_checksum(info.weights);
        let now = unix_now();
        let report = Report {
            tool: "gpen-studio".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            host: crate::paths::host_name(),
            pid: std::process::id(),
            started_unix: now,
            updated_unix: now,
            finished: false,
            shard: info.shard.as_ref().map(|(s, _)| s.to_string()),
            shard_source: info.shard.map(|(_, from)| from),
            output_dir: absolute(info.out_dir),
            device: None,
            model: ModelInfo { path: absolute(info.weights), name: None, sha256, sha256_source },
            planner: Vec::new(),
            stage_seconds: BTreeMap::new(),
            error: None,
            photos: Vec::new(),
            totals: Totals { photos: photos.len(), pending: photos.len(), ..Totals::default() },
        };
        let photos = photos.iter().cloned().zip(outputs.iter().map(|o| absolute(o))).collect();
        let mut w = ReportWriter {
            path: path.into(),
            report,
            photos,
            pending: HashMap::new(),
            started: Instant::now(),
            last_write: None,
            interval: WRITE_INTERVAL,
            write_cost: Duration::ZERO,
            write_error: None,
        };
        w.write()?;
        Ok(w)
    }

    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Rewrites the report at most every `interval` while the run goes on (zero: after every
    /// photo whose end finds the last write older than 20 times its writing time).
    pub fn rewritten_every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The model the run loaded (its configuration and precision) and the device it runs on.
    pub fn model_loaded(&mut self, model: String, device: String) {
        self.report.model.name = Some(model);
        self.report.device = Some(device);
    }

    /// Why the run could not start.
    pub fn setup_failed(&mut self, error: String) {
        self.report.error = Some(error);
    }

    /// A batch size the planner chose, and why.
    pub fn planner_decision(&mut self, batch: usize, reason: String) {
        let at_seconds = self.started.elapsed().as_secs_f64();
        self.report.planner.push(PlannerDecision { batch, reason, at_seconds });
    }

    /// The faces found on a photo in flight (each restored until said otherwise).
    pub fn faces_found(&mut self, id: PhotoId, faces: &[crate::detect::Face]) {
        let records = faces
            .iter()
            .map(|f| FaceRecord { bbox: f.bbox, score: f.score, result: FaceResult::Restored, reason: None, identity: None })
            .collect();
        self.pending.entry(id).or_default().faces = records;
    }

    /// A face of a photo in flight was lost, or took another path (CPU, rectangle mask): why.
    pub fn face_note(&mut self, id: PhotoId, face: usize, lost: bool, reason: String) {
        self.face(id, face, lost.then_some(FaceResult::Failed), reason);
    }

    /// A photo ended; the file is rewritten when the last write is older than the interval
    /// ([`WRITE_INTERVAL`] unless set). A cancelled photo is not recorded.
    pub fn photo_ended(&mut self, id: PhotoId, outcome: &Outcome) {
        let Some(recorded) = PhotoOutcome::of(outcome) else {
            self.pending.remove(&id);
            return;
        };
        let reason = if let Outcome::Failed { error, .. } = outcome { Some(error.to_string()) } else { None };
        if let (Outcome::Restored { identity, .. }, Some(p)) = (outcome, self.pending.get_mut(&id)) {
            for (f, i) in p.faces.iter_mut().zip(identity) {
                f.identity = *i;
            }
        }
        let wait = self.interval.max(self.write_cost * 20);
        if self.end(id, recorded, reason) && self.last_write.is_none_or(|t| t.elapsed() >= wait) {
            self.try_write();
        }
    }

    /// The run finished (or never started): the stage times and totals, written at once.
    pub fn finished(&mut self, summary: &Summary) {
        self.finish(summary);
        self.try_write();
    }

    fn face(&mut self, id: PhotoId, face: usize, result: Option<FaceResult>, reason: String) {
        if let Some(f) = self.pending.get_mut(&id).and_then(|p| p.faces.get_mut(face)) {
            if let Some(r) = result {
                f.result = r;
            }
            f.reason = Some(reason);
        }
    }

    fn end(&mut self, id: PhotoId, outcome: PhotoOutcome, reason: Option<String>) -> bool {
        let Some((photo, output)) = self.photos.get(id as usize) else { return false };
        let mut faces = self.pending.remove(&id).map(|p| p.faces).unwrap_or_default();
        match outcome {
            PhotoOutcome::Failed => {
                for f in faces.iter_mut().filter(|f| f.result == FaceResult::Restored) {
                    f.result = FaceResult::NotWritten;
                }
            }
            PhotoOutcome::NoFaces | PhotoOutcome::AlreadyDone => faces.clear(),
            PhotoOutcome::Restored => {}
        }
        self.report.photos.push(PhotoRecord {
            input: absolute(&photo.path),
            rel: photo.rel.clone(),
            output: output.clone(),
            outcome,
            reason,
            faces,
        });
        self.report.totals = Totals::of(&self.report.photos, self.photos.len());
        true
    }

    fn finish(&mut self, summary: &Summary) {
        self.report.finished = true;
        self.report.stage_seconds = summary.times.named().iter().map(|(n, d)| (stage_key(n), d.as_secs_f64())).collect();
        self.report.totals = Totals::of(&self.report.photos, self.photos.len());
    }

    fn try_write(&mut self) {
        if let Err(e) = self.write() {
            if self.write_error.is_none() {
                eprintln!("warning: cannot write the report {}: {e}", self.path.display());
            }
            self.write_error = Some(e.to_string());
        }
    }

    /// Writes the report now (atomically).
    pub fn write(&mut self) -> std::io::Result<()> {
        let t = Instant::now();
        self.report.updated_unix = unix_now();
        let text = serde_json::to_string_pretty(&self.report).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        crate::paths::write_atomically(&self.path, |tmp| std::fs::write(tmp, &text))?;
        self.last_write = Some(Instant::now());
        self.write_cost = t.elapsed();
        self.write_error = None;
        Ok(())
    }

    /// The error of the last write, when it failed.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }
}

/// `restore (GPEN)` → `restore`: the stage's name as a JSON key.
fn stage_key(name: &str) -> String {
    name.split(' ').next().unwrap_or(name).to_string()
}

/// A report file that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadReportError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{} is not a gpen-studio report: {source}", path.display())]
    NotAReport { path: PathBuf, source: serde_json::Error },
}

/// Reads a report file.
pub fn read(path: &Path) -> Result<Report, ReadReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadReportError::Unreadable { path: path.into(), source })?;
    serde_json::from_str(&text).map_err(|source| ReadReportError::NotAReport { path: path.into(), source })
}

/// Reports folded together: each photo once, with its latest outcome.
#[derive(Debug)]
pub struct Merged {
    pub photos: Vec<PhotoRecord>,
    pub totals: Totals,
    pub reports: usize,
    /// Reports of runs that did not finish (killed, or still running).
    pub unfinished: usize,
    /// Photos that reports planned but that none of them saw end.
    pub pending: usize,
}

/// Folds `reports` (of shards, and of reruns of shards) in the order they started. A photo is
/// known by its output path under the output folder (the same in every shard and on every
/// machine); a later record replaces an earlier one, except that "already done" never replaces
/// what the earlier run did (the result it found is the one that run wrote).
pub fn merge(reports: &[Report]) -> Merged {
    let mut order: Vec<&Report> = reports.iter().collect();
    order.sort_by(|a, b| a.started_unix.total_cmp(&b.started_unix));
    let mut photos: BTreeMap<PathBuf, PhotoRecord> = BTreeMap::new();
    // Planned photos per run (shard and output folder): a rerun of a shard plans the same photos.
    let mut planned: BTreeMap<(Option<String>, PathBuf), usize> = BTreeMap::new();
    for r in &order {
        planned.insert((r.shard.clone(), r.output_dir.clone()), r.totals.photos);
        for p in &r.photos {
            let key = p.output.strip_prefix(&r.output_dir).map(Path::to_path_buf).unwrap_or_else(|_| p.output.clone());
            match photos.get(&key) {
                Some(_) if p.outcome == PhotoOutcome::AlreadyDone => {}
                _ => {
                    photos.insert(key, p.clone());
                }
            }
        }
    }
    let photos: Vec<PhotoRecord> = photos.into_values().collect();
    let planned_total: usize = planned.values().sum();
    let totals = Totals::of(&photos, planned_total.max(photos.len()));
    Merged { pending: totals.pending, totals, reports: reports.len(), unfinished: reports.iter().filter(|r| !r.finished).count(), photos }
}

impl Merged {
    pub fn failed(&self) -> impl Iterator<Item = &PhotoRecord> {
        self.photos.iter().filter(|p| p.outcome == PhotoOutcome::Failed)
    }

    /// The folder the failed photos were found under (`input` without `rel`), when they share one.
    pub fn failed_root(&self) -> Option<PathBuf> {
        let mut roots = self.failed().map(root_of);
        let first = roots.next()??;
        roots.all(|r| r.as_ref() == Some(&first)).then_some(first)
    }
}

fn root_of(p: &PhotoRecord) -> Option<PathBuf> {
    let mut root = p.input.clone();
    for _ in p.rel.components() {
        if !root.pop() {
            return None;
        }
    }
    (root.join(&p.rel) == p.input).then_some(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(output: &str, outcome: PhotoOutcome) -> PhotoRecord {
        PhotoRecord {
            input: PathBuf::from("/in").join(output),
            rel: output.into(),
            output: PathBuf::from("/out").join(output),
            outcome,
            reason: None,
            faces: vec![],
        }
    }

    fn report(started: f64, shard: &str, planned: usize, photos: Vec<PhotoRecord>) -> Report {
        Report {
            tool: "gpen-studio".into(),
            version: "0".into(),
            host: "h".into(),
            pid: 1,
            started_unix: started,
            updated_unix: started,
            finished: true,
            shard: Some(shard.into()),
            shard_source: None,
            output_dir: "/out".into(),
            device: None,
            model: ModelInfo { path: "/m.pth".into(), name: None, sha256: None, sha256_source: None },
            planner: vec![],
            stage_seconds: BTreeMap::new(),
            error: None,
            totals: Totals::of(&photos, planned),
            photos,
        }
    }

    #[test]
    fn a_rerun_after_a_kill_counts_each_photo_once_with_what_was_done() {
        use PhotoOutcome::*;
        // Shard 1 was killed after two photos (one failed); its rerun found the first done,
        // restored the failed one and the rest. Shard 2 ran once.
        let killed = Report { finished: false, ..report(1.0, "1/2", 4, vec![record("a.png", Restored), record("b.png", Failed)]) };
        let rerun = report(
            5.0,
            "1/2",
            4,
            vec![record("a.png", AlreadyDone), record("b.png", Restored), record("c.png", NoFaces), record("d.png", Failed)],
        );
        let other = report(2.0, "2/2", 2, vec![record("e.png", Restored), record("f.png", AlreadyDone)]);
        // The order of the files on the command line does not matter.
        let m = merge(&[rerun, other, killed]);
        assert_eq!(
            m.totals,
            Totals {
                photos: 6,
                restored: 3,
                no_faces: 1,
                already_done: 1,
                failed: 1,
                pending: 0,
                faces_restored: 0,
                faces_failed: 0,
                ..Totals::default()
            }
        );
        assert_eq!((m.reports, m.unfinished), (3, 1));
        let failed: Vec<&Path> = m.failed().map(|p| p.input.as_path()).collect();
        assert_eq!(failed, [Path::new("/in/d.png")]);
        assert_eq!(m.failed_root(), Some(PathBuf::from("/in")));
    }
}
