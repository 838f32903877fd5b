//! The missing-model banner's download: which catalogue model to offer for the missing weights
//! file, where models go ([`ModelSource`], injectable so tests use a temporary folder and a local
//! server), and the state of a download run by a helper thread (idle, running, failed, cancelled,
//! done). Drawing is in `panels::controls`; the thread is in `helpers`.

use crate::weights::{Catalogue, ModelEntry, ModelStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The model offered when the missing file is not a catalogue file.
pub const DEFAULT_MODEL: &str = "GPEN-BFR-512";

/// Where downloaded models go and which ones exist: the data folder and the built-in catalogue in
/// the app, the same as `gpen-studio models download`.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub store: ModelStore,
    pub catalogue: Catalogue,
}

impl Default for ModelSource {
    fn default() -> Self {
        ModelSource { store: ModelStore::default(), catalogue: Catalogue::builtin() }
    }
}

impl ModelSource {
    pub fn new(store_dir: impl Into<PathBuf>, catalogue: Catalogue) -> Self {
        ModelSource { store: ModelStore::new(store_dir), catalogue }
    }

    /// The model to offer for a missing `weights` file: the catalogue entry with that file name,
    /// else GPEN-BFR-512, else the catalogue's first downloadable entry.
    pub fn offer_for(&self, weights: &Path) -> Option<&ModelEntry> {
        let file = weights.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let entries = &self.catalogue.entries;
        self.catalogue
            .by_file(&file)
            .or_else(|| entries.iter().find(|e| e.name == DEFAULT_MODEL))
            .or_else(|| entries.iter().find(|e| e.url.is_some()))
    }

    /// Bytes of the `.part` an interrupted or cancelled download of `entry` left (0 when none).
    pub fn kept(&self, entry: &ModelEntry) -> u64 {
        std::fs::metadata(self.store.part_of(entry)).map(|m| m.len()).unwrap_or(0)
    }
}

/// How a download ended, as the helper thread reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadOutcome {
    /// Validated, hashed and in place.
    Installed { name: String, path: PathBuf },
    /// Stopped by the user; the `.part` keeps `kept` bytes for a resume.
    Cancelled { kept: u64 },
    /// The whole error message (it says what to do next).
    Failed(String),
}

/// A download in flight.
#[derive(Debug, Clone)]
pub struct Running {
    pub name: String,
    /// Bytes in the `.part` so far (a resume starts at what was kept).
    pub bytes: u64,
    /// The file's size, when the server said it.
    pub total: Option<u64>,
    pub started: Instant,
    /// Bytes per second over this transfer, once measurable.
    pub speed: Option<f64>,
    pub cancel: Arc<AtomicBool>,
    /// The first report (bytes then, and when): speed counts only bytes that arrived after it, so
    /// a resumed `.part` and the connection time do not skew it.
    first: Option<(u64, Instant)>,
}

/// Speed is shown once this much of the transfer was timed.
const SPEED_AFTER: Duration = Duration::from_millis(250);

impl Running {
    pub fn new(name: String, cancel: Arc<AtomicBool>) -> Self {
        Running { name, bytes: 0, total: None, started: Instant::now(), speed: None, cancel, first: None }
    }

    pub fn update(&mut self, bytes: u64, total: Option<u64>, now: Instant) {
        // A server that ignored the range makes the download start again from 0.
        if self.first.is_none_or(|(b, _)| bytes < b) {
            self.first = Some((bytes, now));
            self.speed = None;
        }
        let (b0, t0) = self.first.expect("set above");
        let elapsed = now.saturating_duration_since(t0);
        if elapsed >= SPEED_AFTER {
            self.speed = Some((bytes - b0) as f64 / elapsed.as_secs_f64());
        }
        self.bytes = bytes;
        self.total = total;
    }

    pub fn cancelling(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// All bytes are there: the file is being validated and hashed.
    pub fn verifying(&self) -> bool {
        self.total.is_some_and(|t| t > 0 && self.bytes >= t)
    }

    pub fn fraction(&self) -> Option<f32> {
        self.total.filter(|&t| t > 0).map(|t| (self.bytes as f64 / t as f64).min(1.0) as f32)
    }

    pub fn eta(&self) -> Option<Duration> {
        let (total, speed) = (self.total?, self.speed.filter(|s| *s > 0.0)?);
        Some(Duration::from_secs_f64(total.saturating_sub(self.bytes) as f64 / speed))
    }

    /// The progress bar's text: `8.2 of 16.5 MB · 3.1 MB/s · ETA 0:03`, parts left out until known.
    pub fn text(&self) -> String {
        if self.cancelling() {
            return "Cancelling…".into();
        }
        if self.verifying() {
            return format!("Verifying {}…", self.name);
        }
        let mut parts = vec![match self.total {
            Some(t) => format!("{} of {} MB", mb(self.bytes), mb(t)),
            None => format!("{} MB", mb(self.bytes)),
        }];
        if let Some(s) = self.speed {
            parts.push(format!("{:.1} MB/s", s / 1e6));
        }
        if let Some(eta) = self.eta() {
            let s = eta.as_secs();
            parts.push(format!("ETA {}:{:02}", s / 60, s % 60));
        }
        parts.join(" · ")
    }
}

/// Bytes as decimal megabytes with one decimal (as `models list` counts them).
pub fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

#[derive(Debug, Clone, Default)]
pub enum DownloadState {
    #[default]
    Idle,
    Running(Running),
    Failed {
        message: String,
    },
    Cancelled {
        kept: u64,
    },
    Done {
        path: PathBuf,
    },
}

/// The banner's download: the model offered, what of it is on disk, and the download's state.
#[derive(Debug, Clone)]
pub struct ModelDownload {
    pub source: ModelSource,
    /// The model offered for the missing weights file.
    pub offer: Option<ModelEntry>,
    /// Bytes of the offer's `.part` (the "Resume download" button), read when something changed.
    pub kept: u64,
    pub state: DownloadState,
}

impl ModelDownload {
    pub fn new(source: ModelSource, weights: &Path) -> Self {
        let mut download = ModelDownload { source, offer: None, kept: 0, state: DownloadState::Idle };
        download.refresh(weights);
        download
    }

    /// Re-reads the offer for `weights` and the size of its `.part`.
    pub fn refresh(&mut self, weights: &Path) {
        self.offer = self.source.offer_for(weights).cloned();
        self.kept = self.offer.as_ref().map_or(0, |e| self.source.kept(e));
    }

    pub fn running(&self) -> Option<&Running> {
        match &self.state {
            DownloadState::Running(r) => Some(r),
            _ => None,
        }
    }

    /// Asks the running download to stop after its current chunk (the `.part` stays).
    pub fn cancel(&self) {
        if let Some(r) = self.running() {
            r.cancel.store(true, Ordering::Relaxed);
        }
    }

    pub fn progress(&mut self, bytes: u64, total: Option<u64>) {
        if let DownloadState::Running(r) = &mut self.state {
            r.update(bytes, total, Instant::now());
        }
    }

    /// Folds the helper's final report in; `weights` is the current (missing) weights setting.
    pub fn finish(&mut self, outcome: &DownloadOutcome, weights: &Path) {
        self.state = match outcome {
            DownloadOutcome::Installed { path, .. } => DownloadState::Done { path: path.clone() },
            DownloadOutcome::Cancelled { kept } => DownloadState::Cancelled { kept: *kept },
            DownloadOutcome::Failed(message) => DownloadState::Failed { message: message.clone() },
        };
        self.refresh(weights);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_follows_the_missing_file_name() {
        let source = ModelSource::new("/nowhere", Catalogue::builtin());
        let offer = |w: &str| source.offer_for(Path::new(w)).map(|e| e.name.clone());
        assert_eq!(offer("/m/GPEN-BFR-512.pth").as_deref(), Some("GPEN-BFR-512"));
        assert_eq!(offer("/m/GPEN-BFR-256.pth").as_deref(), Some("GPEN-BFR-256"));
        // Only on ModelScope: offered so the banner can say how to get it.
        assert_eq!(offer("/m/GPEN-BFR-1024.pth").as_deref(), Some("GPEN-BFR-1024"));
        assert_eq!(offer("/elsewhere/my-model.pth").as_deref(), Some("GPEN-BFR-512"));
        let other = ModelSource::new("/nowhere", Catalogue::new(vec![]));
        assert!(other.offer_for(Path::new("/m/GPEN-BFR-512.pth")).is_none());
    }

    #[test]
    fn progress_text_shows_what_is_known() {
        let t0 = Instant::now();
        let mut r = Running::new("GPEN-BFR-512".into(), Arc::new(AtomicBool::new(false)));
        r.update(2_000_000, None, t0);
        assert_eq!(r.text(), "2.0 MB");
        assert_eq!(r.fraction(), None);
        r.update(4_000_000, Some(10_000_000), t0 + Duration::from_secs(1));
        assert_eq!(r.text(), "4.0 of 10.0 MB · 2.0 MB/s · ETA 0:03");
        assert_eq!(r.fraction(), Some(0.4));
        r.update(10_000_000, Some(10_000_000), t0 + Duration::from_secs(4));
        assert_eq!(r.text(), "Verifying GPEN-BFR-512…");
        r.cancel.store(true, Ordering::Relaxed);
        assert_eq!(r.text(), "Cancelling…");
    }

    #[test]
    fn a_restart_from_zero_resets_the_speed() {
        let t0 = Instant::now();
        let mut r = Running::new("m".into(), Arc::new(AtomicBool::new(false)));
        r.update(5_000_000, Some(10_000_000), t0);
        r.update(6_000_000, Some(10_000_000), t0 + Duration::from_secs(1));
        assert_eq!(r.speed, Some(1e6));
        r.update(0, Some(10_000_000), t0 + Duration::from_secs(2));
        assert_eq!(r.speed, None);
        r.update(3_000_000, Some(10_000_000), t0 + Duration::from_secs(3));
        assert_eq!(r.speed, Some(3e6));
    }
}
