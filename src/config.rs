//! The one run configuration: what a restoration run needs to know, built by the command line, the
//! window (which persists it) and the benchmarks, validated once, and handed to the engine whole.
//! Every limit is defined here, so the CLI's parsers, the window's sliders and the worker agree.

pub use crate::detect::DetectorUse;
use crate::device::{DeviceChoice, Precision};
pub use crate::error::ConfigError;
use crate::photo::{OutputFormat, ReadLimits};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Share of the free memory that batches may use.
pub const MEMORY_RATIO: RangeInclusive<f64> = 0.10..=0.95;
/// The memory ratio a run starts with (the window's slider, every command's `--memory-ratio`).
pub const DEFAULT_MEMORY_RATIO: f64 = 0.8;
/// How much of the restored face is used (GPEN's `alpha`).
pub const STRENGTH: RangeInclusive<f32> = 0.0..=1.0;
/// Largest batch the planner may choose.
pub const MAX_BATCH: RangeInclusive<usize> = 1..=1024;
/// Largest fixed batch the window's control offers.
pub const MAX_BATCH_OVERRIDE_UI: usize = 256;
/// Smallest face looked for, in pixels.
pub const MIN_FACE: RangeInclusive<f64> = 4.0..=4096.0;
/// MTCNN's smallest face by default (facenet-pytorch's own default), px.
pub const DEFAULT_MIN_FACE: f64 = 20.0;
/// Largest photo accepted, in megapixels.
pub const MAX_MEGAPIXELS: RangeInclusive<f64> = 0.01..=1000.0;
/// Face parser input sizes accepted (`--parser-size`); the parser itself also wants a multiple of
/// `2^down_steps`.
pub const PARSER_SIZE: RangeInclusive<u32> = 32..=2048;
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
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Workers::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if WORKERS.contains(&n) => Ok(Workers::Fixed(n)),
            _ => Err(ConfigError::BadValue(format!("workers must be auto or a number {}-{}, got '{s}'", WORKERS.start(), WORKERS.end()))),
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

/// RetinaFace's score threshold (GPEN's `FaceEnhancement.threshold`).
pub const DETECT_THRESHOLD: RangeInclusive<f32> = 0.0..=1.0;

/// File names of the optional add-ons in the models folder (the authors' names, gpen.md §1).
pub const RETINAFACE_FILE: &str = "RetinaFace-R50.pth";
pub const PARSENET_FILE: &str = "ParseNet-latest.pth";

/// Background super-resolution scales GPEN's RealESRNet comes in (`realesrnet_x{1,2,4}.pth`).
pub const UPSCALE_FACTORS: [u32; 3] = [1, 2, 4];

/// The installed SR weights for a scale: GPEN's file name (`weights/realesrnet_x2.pth`).
pub fn sr_file(scale: u32) -> String {
    format!("realesrnet_x{scale}.pth")
}

/// Which detector finds the faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DetectorChoice {
    /// RetinaFace when its weights are installed (GPEN's own detector), else MTCNN.
    #[default]
    Auto,
    RetinaFace,
    Mtcnn,
}

/// Which mask pastes a restored face back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MaskChoice {
    /// The face parser's mask when ParseNet is installed (GPEN's own), else the feathered rectangle.
    #[default]
    Auto,
    Parser,
    Rectangle,
}

/// Whether each restored face's identity is measured (the identity network, ArcFace IR-SE-50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IdentityChoice {
    /// Measured when the identity network is installed.
    #[default]
    Auto,
    /// Measured; the run needs the network.
    On,
    Off,
}

macro_rules! choice_text {
    ($t:ty, $what:literal, $($variant:ident = $name:literal),+) => {
        impl std::str::FromStr for $t {
            type Err = ConfigError;
            fn from_str(s: &str) -> Result<Self, ConfigError> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($name => Ok(<$t>::$variant),)+
                    other => Err(ConfigError::BadValue(format!(concat!("unknown ", $what, " '{}'; one of: {}"), other, [$($name),+].join(", ")))),
                }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self { $(<$t>::$variant => $name,)+ })
            }
        }
    };
}
choice_text!(DetectorChoice, "detector", Auto = "auto", RetinaFace = "retinaface", Mtcnn = "mtcnn");
choice_text!(MaskChoice, "mask", Auto = "auto", Parser = "parser", Rectangle = "rectangle");
choice_text!(IdentityChoice, "identity choice", Auto = "auto", On = "on", Off = "off");

/// The paste mask a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskUse {
    Parser(PathBuf),
    Rectangle,
}

impl MaskUse {
    /// How the output names the mask, so a user knows which one shaped the paste.
    pub fn describe(&self) -> String {
        match self {
            MaskUse::Parser(p) => format!("face-parsing mask (ParseNet, {})", p.display()),
            MaskUse::Rectangle => "feathered rectangle (no face parser installed)".into(),
        }
    }
}

/// Faces given by the user instead of detected ones (`restore --faces FILE`, or faces switched off
/// in the window), per photo. A photo it does not list is detected as usual.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GivenFaces {
    /// Keyed as the file keys them (`detect --json` uses the file name, or the whole path when two
    /// photos share a name); a photo is looked up by its path first, then by its file name.
    by_key: std::collections::HashMap<String, Vec<crate::detect::Face>>,
    /// Each face's own strength (overriding the run's), where one is given; keyed as `by_key`.
    strengths: std::collections::HashMap<String, Vec<Option<f32>>>,
}

impl GivenFaces {
    pub fn insert(&mut self, key: impl Into<String>, faces: Vec<crate::detect::Face>) {
        let key = key.into();
        self.strengths.remove(&key);
        self.by_key.insert(key, faces);
    }

    /// Faces with their own strengths (`None`: the run's), one per face.
    pub fn insert_with_strengths(&mut self, key: impl Into<String>, faces: Vec<crate::detect::Face>, strengths: Vec<Option<f32>>) {
        let key = key.into();
        debug_assert_eq!(faces.len(), strengths.len());
        if strengths.iter().any(Option::is_some) {
            self.strengths.insert(key.clone(), strengths);
        } else {
            self.strengths.remove(&key);
        }
        self.by_key.insert(key, faces);
    }

    /// The faces given for `photo`: by its whole path, else by its file name.
    pub fn get(&self, photo: &Path) -> Option<&[crate::detect::Face]> {
        self.key_of(photo).map(|k| self.by_key[k].as_slice())
    }

    /// The strength of each face given for `photo` (`None` where the run's applies); `None` when
    /// no face of it has its own.
    pub fn strengths(&self, photo: &Path) -> Option<&[Option<f32>]> {
        self.key_of(photo).and_then(|k| self.strengths.get(k)).map(Vec::as_slice)
    }

    fn key_of(&self, photo: &Path) -> Option<&str> {
        let whole = photo.to_string_lossy();
        if let Some((k, _)) = self.by_key.get_key_value(whole.as_ref()) {
            return Some(k);
        }
        let name = photo.file_name()?.to_string_lossy();
        self.by_key.get_key_value(name.as_ref()).map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Reads the `detect --json` layout: `{ "<file name or path>": { "faces": [ {box, score,
    /// landmarks}, ... ], ... }, ... }`; a face may carry its own `strength` (0-1).
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::FacesFile(format!("cannot read faces file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError::FacesFile(format!("faces file {}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        #[derive(Deserialize)]
        struct GivenFace {
            #[serde(flatten)]
            face: crate::detect::Face,
            #[serde(default)]
            strength: Option<f32>,
        }
        #[derive(Deserialize)]
        struct Entry {
            faces: Vec<GivenFace>,
        }
        let entries: std::collections::BTreeMap<String, Entry> = serde_json::from_str(text).map_err(|e| {
            ConfigError::FacesFile(format!("{e} (expected the layout `detect --json` writes: {{\"photo.jpg\": {{\"faces\": [...]}}}})"))
        })?;
        let mut given = GivenFaces::default();
        for (key, entry) in entries {
            if let Some(bad) =
                entry.faces.iter().position(|f| !f.face.landmarks.iter().flatten().chain(&f.face.bbox).all(|v| v.is_finite()))
            {
                return Err(ConfigError::FacesFile(format!("{key}: face {bad} has a coordinate that is not a number")));
            }
            if let Some((i, s)) =
                entry.faces.iter().enumerate().find_map(|(i, f)| f.strength.filter(|s| !STRENGTH.contains(s)).map(|s| (i, s)))
            {
                return Err(ConfigError::FacesFile(format!("{key}: face {i} has strength {s}; a strength is between 0 and 1")));
            }
            let strengths = entry.faces.iter().map(|f| f.strength).collect();
            given.insert_with_strengths(key, entry.faces.into_iter().map(|f| f.face).collect(), strengths);
        }
        Ok(given)
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
    /// Results carry none of the original's EXIF and XMP and say nothing of what was done
    /// (`--strip-metadata`); the colour profile, resolution and transparency are kept.
    pub strip_metadata: bool,
    /// Only the background upscaler runs (the `upscale` command): no faces are searched or
    /// restored, no generator is loaded, and each photo is written upscaled. Needs `upscale`.
    pub upscale_only: bool,
    pub workers: Workers,
    /// RAM that decoded photos and their faces in flight may take; `None` derives it from the
    /// system's available memory and the memory ratio.
    pub ram_budget: Option<u64>,
    pub detector: DetectorChoice,
    /// RetinaFace weights; `None` looks for [`RETINAFACE_FILE`] in the models folder.
    pub detector_weights: Option<PathBuf>,
    /// RetinaFace keeps faces scoring above this ([`DETECT_THRESHOLD`]; GPEN's 0.9).
    pub detect_threshold: f32,
    pub mask: MaskChoice,
    /// ParseNet weights; `None` looks for [`PARSENET_FILE`] in the models folder.
    pub parser_weights: Option<PathBuf>,
    /// The face parser's input size (`--parser-size`); `None`: the released ParseNet's 512. Not
    /// in the weights, so a parser trained at another size needs it.
    pub parser_size: Option<u32>,
    /// Measure each face's identity ([`IdentityChoice`]).
    pub identity: IdentityChoice,
    /// Identity network weights; `None` looks for [`crate::identity::IDENTITY_FILE`] in the models
    /// folder.
    pub identity_weights: Option<PathBuf>,
    /// The identity guard's floor (cosine similarity in [-1, 1]); `None`: faces are only measured.
    /// A floor needs the identity network.
    pub identity_floor: Option<f32>,
    /// What the guard does with a face below the floor.
    pub identity_guard: crate::identity::GuardMode,
    /// Faces to use instead of detecting, per photo.
    #[serde(skip)]
    pub given_faces: Option<Arc<GivenFaces>>,
    /// What to do with each face (`--task`): restore (default), or with `--aligned` crops colorize,
    /// inpaint or seg2face — each only with a checkpoint trained for it.
    pub task: Option<crate::weights::Task>,
    /// Upscale the photo first by this factor (GPEN's `--use_sr --sr_scale`); faces are then found
    /// on and pasted into the upscaled photo. `None`: the photo keeps its size.
    pub upscale: Option<u32>,
    /// SR weights; `None` takes GPEN's `realesrnet_x{upscale}.pth` from the models folder.
    pub sr_weights: Option<PathBuf>,
    /// Fixed SR tiles (side in input pixels) instead of tiles planned from memory; 0: whole photos.
    pub tile: Option<u32>,
    /// Context around each tile, in input pixels (the authors' 10).
    pub tile_pad: u32,
    /// The authors' output sizes: their SR output keeps an extra padded row and column (their unpad
    /// bug) and faces are cut from the input resized to that size. Off: exactly `upscale` × the input.
    pub gpen_exact: bool,
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
            memory_ratio: DEFAULT_MEMORY_RATIO,
            batch_override: None,
            max_batch: 32,
            cpu_max_batch: 1,
            min_face: DEFAULT_MIN_FACE,
            max_megapixels: 100.0,
            aligned: false,
            upscale_only: false,
            strip_metadata: false,
            workers: Workers::Auto,
            ram_budget: None,
            detector: DetectorChoice::Auto,
            detector_weights: None,
            detect_threshold: 0.9,
            mask: MaskChoice::Auto,
            parser_weights: None,
            parser_size: None,
            identity: IdentityChoice::Auto,
            identity_weights: None,
            identity_floor: None,
            identity_guard: crate::identity::GuardMode::Soften,
            given_faces: None,
            task: None,
            upscale: None,
            sr_weights: None,
            tile: None,
            tile_pad: 10,
            gpen_exact: false,
            monitor_interval: Duration::from_secs(1),
            preview_side: 1024,
            sizer: Sizer::Planned,
        }
    }
}

impl RunConfig {
    /// Every value inside its limits; the error names each one that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if !MEMORY_RATIO.contains(&self.memory_ratio) {
            problems.push(format!(
                "memory ratio must be between {:.2} and {:.2}, got {}",
                MEMORY_RATIO.start(),
                MEMORY_RATIO.end(),
                self.memory_ratio
            ));
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
            problems.push(format!(
                "max megapixels must be between {} and {}, got {}",
                MAX_MEGAPIXELS.start(),
                MAX_MEGAPIXELS.end(),
                self.max_megapixels
            ));
        }
        if let Workers::Fixed(n) = self.workers
            && !WORKERS.contains(&n)
        {
            problems.push(format!("workers must be between {} and {}, got {n}", WORKERS.start(), WORKERS.end()));
        }
        if let Some(s) = self.parser_size.filter(|s| !PARSER_SIZE.contains(s)) {
            problems.push(format!("parser size must be between {} and {} px, got {s}", PARSER_SIZE.start(), PARSER_SIZE.end()));
        }
        if self.upscale_only && self.upscale.is_none() {
            problems.push("upscaling only needs a scale".into());
        }
        if let OutputFormat::Jpeg { quality } = self.format
            && !(1..=100).contains(&quality)
        {
            problems.push(format!("JPEG quality must be between 1 and 100, got {quality}"));
        }
        if let Some(s) = self.upscale.filter(|s| !UPSCALE_FACTORS.contains(s)) {
            problems.push(format!("upscale must be one of 1, 2, 4 (GPEN's RealESRNet scales), got {s}"));
        }
        if let Some(t) = self.task.filter(|t| *t != crate::weights::Task::Restore && !self.aligned) {
            problems.push(format!("--task {t} works on aligned face crops only (add --aligned)"));
        }
        if self.upscale.is_some() && self.aligned {
            problems.push("aligned crops are not upscaled (there is no background); leave out --upscale".into());
        }
        if self.tile_pad > 64 {
            problems.push(format!("tile padding must be at most 64 px, got {}", self.tile_pad));
        }
        if let Some(t) = self.tile.filter(|&t| t != 0 && t < 2 * self.tile_pad.max(1)) {
            problems.push(format!("a tile of {t} px is smaller than twice its {} px context", self.tile_pad));
        }
        if !DETECT_THRESHOLD.contains(&self.detect_threshold) {
            problems.push(format!("detection threshold must be between 0 and 1, got {}", self.detect_threshold));
        }
        if let Some(f) = self.identity_floor.filter(|f| !(-1.0..=1.0).contains(f)) {
            problems.push(format!("identity floor must be between -1 and 1 (a cosine similarity), got {f}"));
        }
        if self.identity_floor.is_some() && self.identity == IdentityChoice::Off {
            problems.push("an identity floor needs the identity measured; leave out --identity off".into());
        }
        if let Sizer::FixedNoRetry(0) = self.sizer {
            problems.push("a fixed batch needs at least 1 face".into());
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::OutOfLimits(problems)) }
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
            || self.detector != other.detector
            || self.detector_weights != other.detector_weights
            || self.detect_threshold != other.detect_threshold
            || self.mask != other.mask
            || self.parser_weights != other.parser_weights
            || self.parser_size != other.parser_size
            || self.task != other.task
            || self.upscale != other.upscale
            || self.sr_weights != other.sr_weights
            || self.upscale_only != other.upscale_only
            || self.identity != other.identity
            || self.identity_weights != other.identity_weights
            || self.identity_floor.is_some() != other.identity_floor.is_some()
    }

    /// The guard a run applies: its floor and mode, when a floor is set.
    pub fn guard(&self) -> Option<crate::identity::Guard> {
        self.identity_floor.map(|floor| crate::identity::Guard { floor, mode: self.identity_guard })
    }

    /// What this run does with each face (`--task`; restoring by default).
    pub fn run_task(&self) -> crate::weights::Task {
        self.task.unwrap_or_default()
    }

    /// What the generator was trained for: what GPEN's file name says (its colorization, inpainting
    /// and seg2face files have a restorer's shapes, so the shapes cannot tell), else, for a name
    /// that says nothing, the task the user asked for.
    pub fn model_task(&self) -> crate::weights::Task {
        let name = self.weights.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::weights::Task::of_name(&name).unwrap_or(self.run_task())
    }

    /// A checkpoint never runs as a task it was not trained for.
    pub fn check_task(&self) -> Result<(), ConfigError> {
        let (model, run) = (self.model_task(), self.run_task());
        if model == run {
            return Ok(());
        }
        Err(ConfigError::WrongTask(format!(
            "{} is a {model} model; it cannot {run} (it would run as something it was not trained for). \
             Use a {run} model{}",
            self.weights.display(),
            if model == crate::weights::Task::Restore { String::new() } else { format!(", or --task {model} with --aligned crops") }
        )))
    }

    /// Every `auto` of this configuration turned into a concrete choice with its file, each choice on
    /// its own (the window shows each): the one place the file system is asked which add-ons are
    /// installed. A run needs all of them: [`RunConfig::resolve`].
    pub fn choices(&self) -> Choices {
        Choices { detector: self.detector_use(), upscaler: self.sr_use(), mask: self.mask_use(), identity: self.identity_use() }
    }

    /// This configuration with every choice made, checked once at the edge (the command, the
    /// engine's model load, the window's preview); the first choice that cannot be made, in the order
    /// a run loads them (detector, upscaler, mask, identity), is the error.
    pub fn resolve(&self) -> Result<ResolvedRun, ConfigError> {
        let Choices { detector, upscaler, mask, identity } = self.choices();
        Ok(ResolvedRun { config: self.clone(), detector: detector?, upscaler: upscaler?, mask: mask?, identity: identity? })
    }

    /// The identity network's weights when faces are measured: `auto` when they are installed, and
    /// always with `on` or a floor (then missing weights are an error that says how to get them).
    /// Aligned crops and upscaling alone paste no faces: nothing to measure.
    fn identity_use(&self) -> Result<Option<PathBuf>, ConfigError> {
        let path = self.identity_weights.clone().unwrap_or_else(|| crate::paths::model_file(crate::identity::IDENTITY_FILE));
        let wanted = self.identity == IdentityChoice::On || self.identity_floor.is_some();
        match self.identity {
            _ if self.aligned || self.upscale_only => Ok(None),
            IdentityChoice::Off => Ok(None),
            _ if path.is_file() => Ok(Some(path)),
            _ if wanted => Err(ConfigError::MissingFile(crate::paths::missing_addon_help(
                "ArcFace IR-SE-50 (the identity network)",
                "--identity-weights",
                &path,
            ))),
            _ => Ok(None),
        }
    }

    /// The SR weights this configuration upscales with, if it upscales; an error that says how to
    /// get them when they are missing.
    fn sr_use(&self) -> Result<Option<PathBuf>, ConfigError> {
        let Some(scale) = self.upscale else { return Ok(None) };
        let path = self.sr_weights.clone().unwrap_or_else(|| crate::paths::model_file(&sr_file(scale)));
        if path.is_file() {
            Ok(Some(path))
        } else {
            Err(ConfigError::MissingFile(crate::paths::missing_addon_help("RealESRNet (background SR)", "--sr-weights", &path)))
        }
    }

    /// The detector: `auto` takes RetinaFace when its weights exist. Asking for RetinaFace without
    /// its weights is an error that says how to get them.
    fn detector_use(&self) -> Result<DetectorUse, ConfigError> {
        let path = self.detector_weights.clone().unwrap_or_else(|| crate::paths::model_file(RETINAFACE_FILE));
        match self.detector {
            // Aligned crops, and photos only upscaled, are not searched: the built-in detector
            // stands in, needing no file.
            _ if self.aligned || self.upscale_only => Ok(DetectorUse::Mtcnn),
            DetectorChoice::Mtcnn => Ok(DetectorUse::Mtcnn),
            DetectorChoice::Auto if !path.is_file() => Ok(DetectorUse::Mtcnn),
            DetectorChoice::Auto => Ok(DetectorUse::RetinaFace(path)),
            DetectorChoice::RetinaFace if path.is_file() => Ok(DetectorUse::RetinaFace(path)),
            DetectorChoice::RetinaFace => {
                Err(ConfigError::MissingFile(crate::paths::missing_addon_help("RetinaFace", "--detector-weights", &path)))
            }
        }
    }

    /// The paste mask (aligned crops are not pasted: rectangle).
    fn mask_use(&self) -> Result<MaskUse, ConfigError> {
        let path = self.parser_weights.clone().unwrap_or_else(|| crate::paths::model_file(PARSENET_FILE));
        match self.mask {
            _ if self.aligned || self.upscale_only => Ok(MaskUse::Rectangle),
            MaskChoice::Rectangle => Ok(MaskUse::Rectangle),
            MaskChoice::Auto if !path.is_file() => Ok(MaskUse::Rectangle),
            MaskChoice::Auto => Ok(MaskUse::Parser(path)),
            MaskChoice::Parser if path.is_file() => Ok(MaskUse::Parser(path)),
            MaskChoice::Parser => Err(ConfigError::MissingFile(crate::paths::missing_addon_help("ParseNet", "--parser-weights", &path))),
        }
    }
}

/// Each `auto` of a configuration as chosen now, or why it cannot be ([`RunConfig::choices`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Choices {
    pub detector: Result<DetectorUse, ConfigError>,
    /// The SR weights when the configuration upscales.
    pub upscaler: Result<Option<PathBuf>, ConfigError>,
    pub mask: Result<MaskUse, ConfigError>,
    /// The identity network's weights when faces are measured.
    pub identity: Result<Option<PathBuf>, ConfigError>,
}

/// A run configuration with every choice made ([`RunConfig::resolve`]): what the engine's stages,
/// its memory plan and the commands take by reference. Its settings read through to the
/// configuration it was resolved from.
#[derive(Debug, Clone)]
pub struct ResolvedRun {
    pub config: RunConfig,
    pub detector: DetectorUse,
    /// The SR weights when the run upscales.
    pub upscaler: Option<PathBuf>,
    pub mask: MaskUse,
    /// The identity network's weights when faces are measured.
    pub identity: Option<PathBuf>,
}

impl std::ops::Deref for ResolvedRun {
    type Target = RunConfig;

    fn deref(&self) -> &RunConfig {
        &self.config
    }
}

impl ResolvedRun {
    /// The run's detector, loaded on `device` (the one place a detector is built from the settings:
    /// the engine's workers, `align` and the window's preview call it).
    pub fn load_detector(&self, device: tch::Device) -> Result<Box<dyn crate::detect::FaceDetector + Send>, crate::error::SetupError> {
        crate::detect::detector_for(&self.detector, self.detect_threshold, self.min_face, device)
    }
}

/// Parses a memory ratio for the command line, with the limits above.
pub fn parse_memory_ratio(s: &str) -> Result<f64, ConfigError> {
    let v: f64 = s.parse().map_err(|_| ConfigError::BadValue(format!("'{s}' is not a number")))?;
    if MEMORY_RATIO.contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::BadValue(format!(
            "memory ratio must be between {:.2} and {:.2}, got {v}",
            MEMORY_RATIO.start(),
            MEMORY_RATIO.end()
        )))
    }
}

/// Parses a strength for the command line.
pub fn parse_strength(s: &str) -> Result<f32, ConfigError> {
    let v: f32 = s.parse().map_err(|_| ConfigError::BadValue(format!("'{s}' is not a number")))?;
    if STRENGTH.contains(&v) { Ok(v) } else { Err(ConfigError::BadValue(format!("strength must be between 0 and 1, got {v}"))) }
}

/// Parses a size such as `3GiB`, `1500MiB` or `512` (bytes).
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let n: f64 = number.trim().parse().map_err(|_| ConfigError::BadValue(format!("bad size '{s}': expected e.g. 3GiB or 1500MiB")))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" | "kb" => 1024.0,
        "m" | "mib" | "mb" => 1024.0 * 1024.0,
        "g" | "gib" | "gb" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(ConfigError::BadValue(format!("unknown unit '{other}' in '{s}'"))),
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
        assert!(e.to_string().contains("memory ratio") && e.to_string().contains("strength") && e.to_string().contains("workers"), "{e}");
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
    fn given_faces_read_the_detect_layout_and_match_by_path_then_name() {
        let text = r#"{"a.jpg": {"width": 9, "height": 9, "faces": [{"box": [1, 2, 3, 4], "score": 0.9, "landmarks": [[1,1],[2,1],[1.5,2],[1,3],[2,3]]}]},
                       "/archive/b.png": {"faces": []}}"#;
        let given = GivenFaces::parse(text).unwrap();
        assert_eq!(given.len(), 2);
        assert_eq!(given.get(Path::new("/photos/2024/a.jpg")).map(|f| f.len()), Some(1), "by file name");
        assert_eq!(given.get(Path::new("/archive/b.png")).map(|f| f.len()), Some(0), "no faces is an answer too");
        assert_eq!(given.get(Path::new("c.jpg")), None, "not listed: detected as usual");
        let err = GivenFaces::parse(r#"[{"box": [1, 2, 3, 4]}]"#).unwrap_err();
        assert!(err.to_string().contains("detect --json"), "{err}");
        let err = GivenFaces::parse(r#"{"a.jpg": {"faces": [{"box": [1, 2, 3, 4], "score": 1}]}}"#).unwrap_err();
        assert!(err.to_string().contains("landmarks"), "{err}");
    }

    #[test]
    fn auto_takes_the_add_ons_only_when_they_are_installed() {
        let dir = tempfile::tempdir().unwrap();
        let retina = dir.path().join("r.pth");
        let parser = dir.path().join("p.pth");
        let missing = RunConfig { detector_weights: Some(retina.clone()), parser_weights: Some(parser.clone()), ..RunConfig::default() };
        assert_eq!(missing.choices().detector, Ok(DetectorUse::Mtcnn));
        assert_eq!(missing.choices().mask, Ok(MaskUse::Rectangle));
        let asked = RunConfig { detector: DetectorChoice::RetinaFace, mask: MaskChoice::Parser, ..missing.clone() };
        assert!(asked.choices().detector.unwrap_err().to_string().contains("models download r"));
        assert!(asked.choices().mask.unwrap_err().to_string().contains("--parser-weights"));
        std::fs::write(&retina, b"x").unwrap();
        std::fs::write(&parser, b"x").unwrap();
        assert_eq!(missing.choices().detector, Ok(DetectorUse::RetinaFace(retina.clone())));
        assert_eq!(missing.choices().mask, Ok(MaskUse::Parser(parser.clone())));
        let builtin = RunConfig { detector: DetectorChoice::Mtcnn, mask: MaskChoice::Rectangle, ..missing.clone() };
        assert_eq!((builtin.choices().detector, builtin.choices().mask), (Ok(DetectorUse::Mtcnn), Ok(MaskUse::Rectangle)));
        // Aligned crops are not pasted, nor searched: no add-on is needed for them even when asked for.
        assert_eq!(RunConfig { aligned: true, ..missing.clone() }.choices().mask, Ok(MaskUse::Rectangle));
        assert_eq!(RunConfig { aligned: true, ..asked.clone() }.choices().detector, Ok(DetectorUse::Mtcnn));
        assert_eq!("RetinaFace".parse::<DetectorChoice>(), Ok(DetectorChoice::RetinaFace));
        assert!("yolo".parse::<DetectorChoice>().unwrap_err().to_string().contains("auto, retinaface, mtcnn"));
    }

    #[test]
    fn settings_survive_a_round_trip_through_json() {
        let c = RunConfig { format: OutputFormat::Jpeg { quality: 90 }, workers: Workers::Fixed(3), ..RunConfig::default() };
        let back: RunConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.format, c.format);
        assert_eq!(back.workers, c.workers);
    }
}
