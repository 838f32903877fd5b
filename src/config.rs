//! The one run configuration: what a restoration run needs to know, built by the command line, the
//! window (which persists it) and the benchmarks, validated once, and handed to the engine whole.
//! Every limit is defined here, so the CLI's parsers, the window's sliders and the worker agree.

use crate::device::{DeviceChoice, Precision};
use crate::photo::{OutputFormat, ReadLimits};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// Share of the free memory that batches may use.
pub const MEMORY_RATIO: RangeInclusive<f64> = 0.10..=0.95;
/// How much of the restored face is used (GPEN's `alpha`).
pub const STRENGTH: RangeInclusive<f32> = 0.0..=1.0;
/// Largest batch the planner may choose.
pub const MAX_BATCH: RangeInclusive<usize> = 1..=1024;
/// Largest fixed batch the window's control offers.
pub const MAX_BATCH_OVERRIDE_UI: usize = 256;
/// Smallest face looked for, in pixels.
pub const MIN_FACE: RangeInclusive<f64> = 4.0..=4096.0;
/// Largest photo accepted, in megapixels.
pub const MAX_MEGAPIXELS: RangeInclusive<f64> = 0.01..=1000.0;
/// CPU stage workers (read + detect + align, paste + encode).
pub const WORKERS: RangeInclusive<usize> = 1..=256;

/// How many CPU workers the stages around the GPU get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Workers {
    /// One per core.
    #[default]
    Auto,
    /// `Fixed(1)` runs every step on the engine's thread, one after the other.
    Fixed(usize),
}

impl Workers {
    /// The number of read + detect + align workers (paste + encode get half as many, at least one:
    /// they cost a fraction of detection, docs/BENCHMARKS.md).
    pub fn count(self) -> usize {
        match self {
            Workers::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Workers::Fixed(n) => n.max(1),
        }
    }

    /// Paste + encode workers beside [`Self::count`] detection workers, when staged.
    pub fn writers(self) -> usize {
        (self.count() / 2).max(1)
    }
}

impl std::str::FromStr for Workers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Workers::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if WORKERS.contains(&n) => Ok(Workers::Fixed(n)),
            _ => Err(format!("workers must be auto or a number {}-{}, got '{s}'", WORKERS.start(), WORKERS.end())),
        }
    }
}

impl std::fmt::Display for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workers::Auto => write!(f, "auto"),
            Workers::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// How the GPU stage sizes its batches. The product uses the memory planner; benchmarks compare it
/// with fixed sizes through the same restore path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Sizer {
    /// The planner's recommendation, halved on out-of-memory and grown back.
    #[default]
    Planned,
    /// Always `n` faces, and a batch that runs out of memory loses its faces (what tools without
    /// memory handling do; benchmark baseline).
    FixedNoRetry(usize),
}

/// Everything a run needs; see the module comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub weights: PathBuf,
    pub device: DeviceChoice,
    pub precision: Precision,
    pub strength: f32,
    pub out_dir: PathBuf,
    pub format: OutputFormat,
    pub save_faces: bool,
    pub overwrite: bool,
    /// Share of the free memory the batches may use ([`MEMORY_RATIO`]).
    pub memory_ratio: f64,
    /// A fixed batch size instead of the recommendation (still halved on out-of-memory).
    pub batch_override: Option<usize>,
    pub max_batch: usize,
    /// Largest batch on the CPU. libtorch already spreads one face over every core, and the CPU
    /// benchmark (docs/BENCHMARKS.md) measured no gain from batching (2.07 s/face at 1, 2.09 at 2,
    /// 2.23 at 4), so the CPU runs one face per call unless this is raised.
    pub cpu_max_batch: usize,
    pub min_face: f64,
    pub max_megapixels: f64,
    /// Inputs are aligned face crops: each is resized to the model size and restored whole, with no
    /// detection and no paste-back (GPEN's aligned mode).
    pub aligned: bool,
    pub workers: Workers,
    /// RAM that decoded photos and their faces in flight may take; `None` derives it from the
    /// system's available memory and the memory ratio.
    pub ram_budget: Option<u64>,
    /// How often memory is sampled (and reported) while idle or between steps.
    #[serde(skip)]
    pub monitor_interval: Duration,
    /// Longest side of the before/after previews sent to the UI; 0 sends none.
    #[serde(skip)]
    pub preview_side: u32,
    #[serde(skip)]
    pub sizer: Sizer,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            weights: crate::paths::default_weights(),
            device: DeviceChoice::Auto,
            precision: Precision::Fp32,
            strength: 1.0,
            out_dir: PathBuf::from("restored"),
            format: OutputFormat::Png,
            save_faces: false,
            overwrite: false,
            memory_ratio: 0.8,
            batch_override: None,
            max_batch: 32,
            cpu_max_batch: 1,
            min_face: 20.0,
            max_megapixels: 100.0,
            aligned: false,
            workers: Workers::Auto,
            ram_budget: None,
            monitor_interval: Duration::from_secs(1),
            preview_side: 1024,
            sizer: Sizer::Planned,
        }
    }
}

impl RunConfig {
    /// Every value inside its limits; the error names each one that is not.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !MEMORY_RATIO.contains(&self.memory_ratio) {
            problems.push(format!("memory ratio must be between {:.2} and {:.2}, got {}", MEMORY_RATIO.start(), MEMORY_RATIO.end(), self.memory_ratio));
        }
        if !STRENGTH.contains(&self.strength) {
            problems.push(format!("strength must be between 0 and 1, got {}", self.strength));
        }
        for (name, value) in [("max batch", self.max_batch), ("CPU max batch", self.cpu_max_batch)] {
            if !MAX_BATCH.contains(&value) {
                problems.push(format!("{name} must be between {} and {}, got {value}", MAX_BATCH.start(), MAX_BATCH.end()));
            }
        }
        if let Some(b) = self.batch_override.filter(|b| !MAX_BATCH.contains(b)) {
            problems.push(format!("batch must be between {} and {}, got {b}", MAX_BATCH.start(), MAX_BATCH.end()));
        }
        if !MIN_FACE.contains(&self.min_face) {
            problems.push(format!("min face must be between {} and {} px, got {}", MIN_FACE.start(), MIN_FACE.end(), self.min_face));
        }
        if !MAX_MEGAPIXELS.contains(&self.max_megapixels) {
            problems.push(format!("max megapixels must be between {} and {}, got {}", MAX_MEGAPIXELS.start(), MAX_MEGAPIXELS.end(), self.max_megapixels));
        }
        if let Workers::Fixed(n) = self.workers.clone() {
            if !WORKERS.contains(&n) {
                problems.push(format!("workers must be between {} and {}, got {n}", WORKERS.start(), WORKERS.end()));
            }
        }
        if let OutputFormat::Jpeg { quality } = self.format {
            if !(1..=100).contains(&quality) {
                problems.push(format!("JPEG quality must be between 1 and 100, got {quality}"));
            }
        }
        if let Sizer::FixedNoRetry(0) = self.sizer {
            problems.push("a fixed batch needs at least 1 face".into());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    pub fn read_limits(&self) -> ReadLimits {
        ReadLimits { max_pixels: (self.max_megapixels * 1e6) as u64, ..ReadLimits::default() }
    }

    /// The output format actually written: aligned crops are always PNG (lossless faces).
    pub fn output_format(&self) -> OutputFormat {
        if self.aligned { OutputFormat::Png } else { self.format }
    }

    /// A change that needs the models loaded again.
    pub fn model_differs(&self, other: &RunConfig) -> bool {
        self.weights != other.weights
            || self.device != other.device
            || self.precision != other.precision
            || self.min_face != other.min_face
    }
}

/// Parses a memory ratio for the command line, with the limits above.
pub fn parse_memory_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if MEMORY_RATIO.contains(&v) {
        Ok(v)
    } else {
        Err(format!("memory ratio must be between {:.2} and {:.2}, got {v}", MEMORY_RATIO.start(), MEMORY_RATIO.end()))
    }
}

/// Parses a strength for the command line.
pub fn parse_strength(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if STRENGTH.contains(&v) { Ok(v) } else { Err(format!("strength must be between 0 and 1, got {v}")) }
}

/// Parses a size such as `3GiB`, `1500MiB` or `512` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let n: f64 = number.trim().parse().map_err(|_| format!("bad size '{s}': expected e.g. 3GiB or 1500MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" | "kb" => 1024.0,
        "m" | "mib" | "mb" => 1024.0 * 1024.0,
        "g" | "gib" | "gb" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit '{other}' in '{s}'")),
    };
    Ok((n * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_each_bad_value_is_named() {
        assert_eq!(RunConfig::default().validate(), Ok(()));
        let bad = RunConfig { memory_ratio: 0.05, strength: 2.0, workers: Workers::Fixed(0), ..RunConfig::default() };
        let e = bad.validate().unwrap_err();
        assert!(e.contains("memory ratio") && e.contains("strength") && e.contains("workers"), "{e}");
    }

    #[test]
    fn the_cli_parsers_use_the_same_limits() {
        assert_eq!(parse_memory_ratio("0.10"), Ok(0.10));
        assert!(parse_memory_ratio("0.05").is_err());
        assert!(parse_memory_ratio("0.96").is_err());
        assert_eq!("auto".parse::<Workers>(), Ok(Workers::Auto));
        assert_eq!("3".parse::<Workers>(), Ok(Workers::Fixed(3)));
        assert!("0".parse::<Workers>().is_err());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("3GiB"), Ok(3 << 30));
        assert_eq!(parse_size("1500MiB"), Ok(1500 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn settings_survive_a_round_trip_through_json() {
        let c = RunConfig { format: OutputFormat::Jpeg { quality: 90 }, workers: Workers::Fixed(3), ..RunConfig::default() };
        let back: RunConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.format, c.format);
        assert_eq!(back.workers, c.workers);
    }
}
