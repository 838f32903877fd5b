//! How the headless commands talk on stderr: how much (`-q`, `-v`), the batch plan only when its
//! size changes, and progress as a bar on a terminal or as a plain line every so often in a pipe or
//! a log file (CI and cluster logs stay readable: no carriage returns, no thousands of lines).

use crate::engine::worker::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// How much the commands say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors and the summary only (`-q`).
    Quiet,
    /// Plans when they change, notes, warnings, progress.
    Normal,
    /// Also every re-plan, even when the batch stays the same (`-v`).
    Verbose,
}

impl Verbosity {
    pub fn from_flags(verbose: bool, quiet: bool) -> Verbosity {
        match (verbose, quiet) {
            (_, true) => Verbosity::Quiet,
            (true, false) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }
}

static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Set once from the global flags, before the command runs.
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// A note on stderr for commands without a [`RunOutput`]; not with `-q`.
pub fn note(line: impl std::fmt::Display) {
    if verbosity() > Verbosity::Quiet {
        eprintln!("{line}");
    }
}

/// Turns the engine's plan events into lines. The engine re-plans whenever its memory reading moves
/// (the reason's arithmetic changes with every MiB); a line is worth printing when the decision
/// changes: the batch size, or the SR tile size. `-v` prints every re-plan.
#[derive(Debug)]
pub struct PlanLines {
    verbosity: Verbosity,
    batch: Option<usize>,
    /// `Some(None)`: whole photos were planned last.
    tile: Option<Option<u32>>,
}

impl PlanLines {
    pub fn new(verbosity: Verbosity) -> Self {
        PlanLines { verbosity, batch: None, tile: None }
    }

    /// The line for a batch plan, when there is one to print.
    pub fn batch(&mut self, batch: usize, reason: &str) -> Option<String> {
        let previous = self.batch.replace(batch);
        let line = match previous {
            None => format!("batch {batch}: {reason}"),
            Some(p) if p != batch => format!("batch {batch} (was {p}): {reason}"),
            Some(_) => format!("batch {batch} (re-planned): {reason}"),
        };
        self.wanted(previous.is_none_or(|p| p != batch)).then_some(line)
    }

    /// The line for an SR tile plan (`tile`: the tile side, `None` for whole photos).
    pub fn tiles(&mut self, tile: Option<u32>, reason: &str) -> Option<String> {
        let previous = self.tile.replace(tile);
        self.wanted(previous != Some(tile)).then(|| format!("upscale: {reason}"))
    }

    fn wanted(&self, changed: bool) -> bool {
        match self.verbosity {
            Verbosity::Quiet => false,
            Verbosity::Normal => changed,
            Verbosity::Verbose => true,
        }
    }
}

/// When a plain progress line is due: every tenth of the photos, or every [`PLAIN_EVERY`], whichever
/// comes first.
#[derive(Debug)]
pub struct PlainSchedule {
    every_photos: usize,
    every: Duration,
    next_photos: usize,
    last: Instant,
}

/// The longest a pipe or log goes without a progress line while photos are being restored.
pub const PLAIN_EVERY: Duration = Duration::from_secs(30);

impl PlainSchedule {
    pub fn new(total: usize, every: Duration, start: Instant) -> Self {
        let every_photos = total.div_ceil(10).max(1);
        PlainSchedule { every_photos, every, next_photos: every_photos, last: start }
    }

    /// Whether a line is due with `done` photos finished at `now` (and if so, it is counted as printed).
    pub fn due(&mut self, done: usize, now: Instant) -> bool {
        if done < self.next_photos && now.duration_since(self.last) < self.every {
            return false;
        }
        self.next_photos = (done / self.every_photos + 1) * self.every_photos;
        self.last = now;
        true
    }
}

/// The progress part of a run's output.
enum Meter {
    Bar(ProgressBar),
    Plain(PlainSchedule),
    Silent,
}

/// What a long run (`restore`) prints on stderr, at the chosen verbosity: plans, notes, warnings,
/// errors, progress and the summary.
pub struct RunOutput {
    verbosity: Verbosity,
    plans: PlanLines,
    meter: Meter,
    unit: &'static str,
    started: Instant,
    sink: Box<dyn FnMut(&str) + Send>,
}

impl RunOutput {
    /// On stderr, at the global verbosity; a bar when stderr is a terminal.
    pub fn stderr(total: usize, unit: &'static str) -> Self {
        Self::new(total, unit, verbosity(), std::io::stderr().is_terminal(), Box::new(|line| eprintln!("{line}")))
    }

    /// Lines go to `sink`; `terminal` chooses the bar over plain lines.
    pub fn new(total: usize, unit: &'static str, verbosity: Verbosity, terminal: bool, sink: Box<dyn FnMut(&str) + Send>) -> Self {
        let started = Instant::now();
        let meter = match (verbosity, terminal) {
            (Verbosity::Quiet, _) => Meter::Silent,
            (_, true) => {
                let template = format!("{{bar:30}} {{pos}}/{{len}} {unit}, {{msg}}  {{elapsed}} elapsed, ETA {{eta}}");
                Meter::Bar(ProgressBar::new(total as u64).with_style(ProgressStyle::with_template(&template).expect("template")))
            }
            (_, false) => Meter::Plain(PlainSchedule::new(total, PLAIN_EVERY, started)),
        };
        RunOutput { verbosity, plans: PlanLines::new(verbosity), meter, unit, started, sink }
    }

    fn say(&mut self, line: &str) {
        let sink = &mut self.sink;
        match &self.meter {
            Meter::Bar(bar) => bar.suspend(|| sink(line)),
            _ => sink(line),
        }
    }

    /// Always printed.
    pub fn error(&mut self, line: &str) {
        self.say(line);
    }

    /// Always printed: the run's result.
    pub fn summary(&mut self, line: &str) {
        self.say(line);
    }

    /// Notes and warnings; not with `-q`.
    pub fn info(&mut self, line: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.say(line);
        }
    }

    pub fn batch_plan(&mut self, batch: usize, reason: &str) {
        if let Some(line) = self.plans.batch(batch, reason) {
            self.say(&line);
        }
    }

    pub fn tile_plan(&mut self, tile: Option<u32>, reason: &str) {
        if let Some(line) = self.plans.tiles(tile, reason) {
            self.say(&line);
        }
    }

    pub fn progress(&mut self, p: &Progress) {
        match &mut self.meter {
            Meter::Bar(bar) => {
                bar.set_length(p.photos_total as u64);
                bar.set_position(p.photos_done as u64);
                bar.set_message(format!("{} of {} faces, {:.2} faces/s", p.faces_done, p.faces_total, p.faces_per_second));
            }
            Meter::Plain(schedule) => {
                if schedule.due(p.photos_done, Instant::now()) {
                    let line = plain_line(p, self.unit, self.started.elapsed());
                    self.say(&line);
                }
            }
            Meter::Silent => {}
        }
    }

    /// Clears the bar before the summary.
    pub fn finish(&mut self) {
        if let Meter::Bar(bar) = &self.meter {
            bar.finish_and_clear();
        }
    }
}

/// `progress: 120/1000 photos, 240 of 2000 faces, 1.52 faces/s, 2m10s elapsed, ETA 19m02s`.
pub fn plain_line(p: &Progress, unit: &str, elapsed: Duration) -> String {
    let eta = p.eta.map(clock).unwrap_or_else(|| "-".into());
    format!(
        "progress: {}/{} {unit}, {} of {} faces, {:.2} faces/s, {} elapsed, ETA {eta}",
        p.photos_done,
        p.photos_total,
        p.faces_done,
        p.faces_total,
        p.faces_per_second,
        clock(elapsed)
    )
}

/// `42s`, `2m10s`, `1h05m`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory_model::{MemoryModel, ModelSource};
    use crate::engine::planner::recommend_available;
    use std::sync::{Arc, Mutex};

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// The planner's decisions for free memory wobbling by a few MiB around 22.4 GiB (the issue's
    /// run: 5 MiB a face, max batch 1): every reason differs, the batch never does.
    fn wobbling_plans() -> Vec<(usize, String)> {
        let model = MemoryModel { fixed: 300 * MIB, per_face: 5 * MIB, source: ModelSource::Analytic };
        let plans: Vec<(usize, String)> = [0i64, 3, -2, 7, 1, -5, 4, 60, -60, 2]
            .iter()
            .map(|d| (22 * GIB + 400 * MIB).saturating_add_signed(d * 10 * MIB as i64))
            .map(|free| recommend_available(free, 0, 0.8, &model, 1))
            .map(|r| (r.batch, r.reason))
            .collect();
        let distinct: std::collections::BTreeSet<&String> = plans.iter().map(|(_, r)| r).collect();
        assert!(distinct.len() > 3, "the readings must move the arithmetic: {plans:?}");
        plans
    }

    fn captured(verbosity: Verbosity, feed: impl FnOnce(&mut RunOutput)) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let mut out = RunOutput::new(12, "photos", verbosity, false, Box::new(move |l| sink.lock().unwrap().push(l.to_string())));
        feed(&mut out);

        lines.lock().unwrap().clone()
    }

    #[test]
    fn a_wobbling_reading_with_the_same_batch_prints_one_plan_line() {
        let plans = wobbling_plans();
        let lines = captured(Verbosity::Normal, |out| plans.iter().for_each(|(b, r)| out.batch_plan(*b, r)));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("batch 1: ") && lines[0].ends_with("→ 1 (max batch)"), "{lines:?}");
        // -v prints every re-plan; -q none.
        let verbose = captured(Verbosity::Verbose, |out| plans.iter().for_each(|(b, r)| out.batch_plan(*b, r)));
        assert_eq!(verbose.len(), plans.len(), "{verbose:?}");
        assert!(captured(Verbosity::Quiet, |out| plans.iter().for_each(|(b, r)| out.batch_plan(*b, r))).is_empty());
    }

    #[test]
    fn a_changed_batch_is_printed_with_the_old_size_and_its_reason() {
        let model = MemoryModel { fixed: GIB, per_face: GIB, source: ModelSource::Analytic };
        let mut plans = PlanLines::new(Verbosity::Normal);
        let decisions: Vec<_> = [8 * GIB, 8 * GIB + 3 * MIB, 6 * GIB, 6 * GIB - MIB, 8 * GIB]
            .iter()
            .map(|&free| recommend_available(free, 0, 0.8, &model, 32))
            .collect();
        let lines: Vec<String> = decisions.iter().filter_map(|r| plans.batch(r.batch, &r.reason)).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("batch 5: 8.0 GiB free"), "{lines:?}");
        assert!(lines[1].starts_with("batch 3 (was 5): 6.0 GiB free"), "{lines:?}");
        assert!(lines[2].starts_with("batch 5 (was 3): "), "{lines:?}");
    }

    #[test]
    fn tile_plans_are_printed_when_the_tile_changes() {
        let mut plans = PlanLines::new(Verbosity::Normal);
        assert!(plans.tiles(Some(239), "tiles of 239 px: √(64 MiB ÷ 1024 B) = 259 px").is_some());
        assert!(plans.tiles(Some(239), "tiles of 239 px: √(65 MiB ÷ 1024 B) = 261 px").is_none());
        assert!(plans.tiles(None, "whole photo: 30 MiB ≤ 64 MiB for SR").is_some());
        assert!(plans.tiles(None, "whole photo: 20 MiB ≤ 64 MiB for SR").is_none());
    }

    #[test]
    fn quiet_keeps_errors_and_the_summary_only() {
        let progress = Progress { photos_done: 12, photos_total: 12, ..Progress::default() };
        let feed = |out: &mut RunOutput| {
            out.info("note: a.jpg: no faces found; written unchanged");
            out.batch_plan(4, "8.0 GiB free × 0.80 − 1.0 GiB fixed = 5.4 GiB ÷ 1.00 GiB per face = 5");
            out.progress(&progress);
            out.error("error: b.jpg: cannot read");
            out.summary("photos restored 10, failed 1");
        };
        assert_eq!(captured(Verbosity::Quiet, feed), ["error: b.jpg: cannot read", "photos restored 10, failed 1"]);
        let normal = captured(Verbosity::Normal, feed);
        assert_eq!(normal.len(), 5, "{normal:?}");
        assert!(normal[2].starts_with("progress: 12/12 photos"), "{normal:?}");
    }

    #[test]
    fn plain_progress_is_a_line_every_tenth_or_every_half_minute() {
        let t0 = Instant::now();
        let mut s = PlainSchedule::new(1000, PLAIN_EVERY, t0);
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let due: Vec<usize> = (1..=1000).filter(|&done| s.due(done, at(1))).collect();
        assert_eq!(due, (1..=10).map(|i| i * 100).collect::<Vec<_>>());
        // A slow stretch: one line per 30 s even without a tenth done.
        let mut s = PlainSchedule::new(1000, PLAIN_EVERY, t0);
        assert!(!s.due(5, at(10)));
        assert!(s.due(6, at(31)));
        assert!(!s.due(7, at(40)));
        assert!(s.due(8, at(62)));
        assert!(s.due(100, at(63)), "a tenth is still a line");
    }
}
