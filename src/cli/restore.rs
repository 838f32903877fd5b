//! `restore`: whole photos (detect, align, restore, paste back), or with `--aligned` face crops that
//! are already aligned (GPEN's aligned mode).

use super::ModelArgs;
use crate::config::{self, ResolvedRun, RunConfig, Workers};
use crate::engine::worker::{Components, EngineEvent, spawn};
use crate::photo::OutputFormat;
use crate::pipeline::Outcome;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Photos, or folders of photos (results mirror the folders: in/a/x.jpg → OUTDIR/a/x.png).
    #[arg(required_unless_present = "from_list", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Also take photos from sub-folders of the folders given.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Inputs are aligned face crops (resized to the model size); restore them whole, no detection,
    /// written as PNG.
    #[arg(long)]
    pub aligned: bool,
    /// Output folder (created if missing); inputs are never modified, and nothing inside it is
    /// ever taken as input.
    #[arg(long, short = 'o', value_name = "OUTDIR")]
    pub output: PathBuf,
    /// Faces per GPEN call, instead of the size planned from free memory (still halved
    /// automatically when memory runs out). Default: planned from free memory.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch: Option<usize>,
    /// Share of the free GPU memory (system RAM on the CPU) that batches may use, 0.10-0.95.
    #[arg(long, default_value_t = crate::config::DEFAULT_MEMORY_RATIO, value_name = "R", value_parser = config::parse_memory_ratio)]
    pub memory_ratio: f64,
    /// Largest batch the planner may choose.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_batch: usize,
    /// Replace results that already exist (by default they are kept, so a rerun resumes).
    #[arg(long)]
    pub overwrite: bool,
    /// How much of the restored face to use: 1 = all, 0 = the original (GPEN's --alpha).
    #[arg(long, default_value_t = 1.0, value_name = "S", value_parser = config::parse_strength)]
    pub strength: f32,
    /// Output format of restored photos: png, jpg, webp (lossless), tiff (deflate) or tiff-lzw.
    #[arg(long, default_value = "png", value_name = "FMT")]
    pub format: OutputFormat,
    /// JPEG quality, 1-100.
    #[arg(long, default_value_t = OutputFormat::DEFAULT_JPEG_QUALITY, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Also write each face, aligned input | restored, as NAME_faceNN.png.
    #[arg(long)]
    pub save_faces: bool,
    /// Leave the original's EXIF and XMP out of the results, and say nothing there of what was done
    /// (by default both are kept, with gpen-studio as Software and an XMP history entry); the colour
    /// profile, resolution and transparency are kept either way.
    #[arg(long)]
    pub strip_metadata: bool,
    /// Smallest face to look for, in pixels.
    #[arg(long, default_value_t = crate::config::DEFAULT_MIN_FACE, value_name = "PX")]
    pub min_face: f64,
    /// Refuse photos larger than this many megapixels (protects against decompression bombs).
    #[arg(long, default_value_t = 100.0, value_name = "MP")]
    pub max_megapixels: f64,
    /// CPU workers around the GPU: N read + detect + align workers and N/2 paste + encode workers
    /// (auto: one per core; 1: every step on one thread, one after the other).
    #[arg(long, default_value = "auto", value_name = "N")]
    pub workers: Workers,
    /// RAM that photos in flight may take, e.g. 4GiB (default: the memory ratio of the RAM
    /// available at the start). A photo larger than this still runs, alone.
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    pub ram_budget: Option<u64>,
    #[command(flatten)]
    pub face_args: FaceArgs,
    #[command(flatten)]
    pub mask_args: MaskArgs,
    #[command(flatten)]
    pub sr_args: SrArgs,
    #[command(flatten)]
    pub identity_args: IdentityArgs,
    /// With --aligned: what to do with each crop — restore (default), colorize (GPEN-Colorization:
    /// grey in, colours out, the input's luminance kept), inpaint (GPEN-Inpainting: white regions,
    /// or NAME_mask.png beside the crop, are filled) or seg2face (GPEN-Seg2face: a parsing map in).
    /// The weights must be trained for it (their GPEN file name says so).
    #[arg(long, value_name = "TASK")]
    pub task: Option<crate::weights::Task>,
    /// Upscale each photo first by this factor (1, 2 or 4) with GPEN's RealESRNet (realesrnet_xS.pth
    /// in the models folder, or --sr-weights); faces are then found on and pasted into the upscaled
    /// photo, as GPEN's --use_sr does.
    #[arg(long, value_name = "S", conflicts_with = "aligned")]
    pub upscale: Option<u32>,
    /// Faces to use instead of detecting (the layout `detect --json` writes, keyed by file name or
    /// path); photos the file does not list are detected as usual.
    #[arg(long, value_name = "FILE", conflicts_with = "aligned")]
    pub faces: Option<PathBuf>,
    /// Also restore the photos with a second generator (B), with the faces the first found, into
    /// OUTDIR/compare-<B>/, and write each photo's A | B side by side as OUTDIR/compare/NAME.png
    /// (each face's identity under both is printed).
    #[arg(long, value_name = "FILE", conflicts_with = "aligned")]
    pub compare_with: Option<PathBuf>,
    /// Print the photos found, the model, the device and the batch that would be planned now (with
    /// its arithmetic), and restore nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub archive: super::archive_args::ArchiveArgs,
}

impl RestoreArgs {
    /// The run configuration these arguments describe, validated.
    pub fn config(&self) -> anyhow::Result<RunConfig> {
        let config = RunConfig {
            weights: self.model.weights_path(),
            device: self.model.device.choice,
            precision: self.model.precision,
            strength: self.strength,
            out_dir: self.output.clone(),
            format: match self.format {
                OutputFormat::Jpeg { .. } => OutputFormat::Jpeg { quality: self.quality },
                other => other,
            },
            save_faces: self.save_faces,
            strip_metadata: self.strip_metadata,
            overwrite: self.overwrite,
            memory_ratio: self.memory_ratio,
            batch_override: self.batch,
            max_batch: self.max_batch,
            min_face: self.min_face,
            max_megapixels: self.max_megapixels,
            aligned: self.aligned,
            workers: self.workers,
            ram_budget: self.ram_budget,
            given_faces: match &self.faces {
                Some(f) => Some(std::sync::Arc::new(config::GivenFaces::read(f).map_err(anyhow::Error::msg)?)),
                None => None,
            },
            preview_side: 0, // the terminal shows no images
            ..RunConfig::default()
        };
        let config = RunConfig { upscale: self.upscale, task: self.task, ..config };
        let config = self.identity_args.apply(self.sr_args.apply(self.mask_args.apply(self.face_args.apply(config))));
        config.validate().map_err(super::exit::usage)?;
        Ok(config)
    }
}

/// How faces are found: shared by `restore` and `detect`.
#[derive(Debug, Clone, Args)]
pub struct FaceArgs {
    /// Face detector: auto (GPEN's RetinaFace when RetinaFace-R50.pth is installed, else MTCNN),
    /// retinaface, or mtcnn.
    #[arg(long, default_value = "auto", value_name = "NAME")]
    pub detector: config::DetectorChoice,
    /// RetinaFace weights (default: RetinaFace-R50.pth in the models folder); ResNet-50 and
    /// MobileNet-0.25 files are both recognised.
    #[arg(long, value_name = "FILE")]
    pub detector_weights: Option<PathBuf>,
    /// RetinaFace keeps faces scoring above this (GPEN's 0.9); MTCNN uses its own stage thresholds.
    #[arg(long, default_value_t = 0.9, value_name = "T", value_parser = parse_threshold)]
    pub threshold: f32,
}

impl FaceArgs {
    /// `config` with these choices.
    pub fn apply(&self, config: RunConfig) -> RunConfig {
        RunConfig { detector: self.detector, detector_weights: self.detector_weights.clone(), detect_threshold: self.threshold, ..config }
    }
}

/// How restored faces are pasted back: shared by `restore` and `bench pipeline`.
#[derive(Debug, Clone, Args)]
pub struct MaskArgs {
    /// Paste mask: auto (GPEN's face-parsing mask when ParseNet-latest.pth is installed, else a
    /// feathered rectangle), parser, or rectangle.
    #[arg(long, default_value = "auto", value_name = "MASK")]
    pub mask: config::MaskChoice,
    /// ParseNet weights (default: ParseNet-latest.pth in the models folder).
    #[arg(long, value_name = "FILE")]
    pub parser_weights: Option<PathBuf>,
    #[command(flatten)]
    pub parser_size: ParserSizeArg,
}

impl MaskArgs {
    pub fn apply(&self, config: RunConfig) -> RunConfig {
        RunConfig { mask: self.mask, parser_weights: self.parser_weights.clone(), parser_size: self.parser_size.size, ..config }
    }
}

/// Each face's identity, measured and guarded: shared by `restore` and `bench pipeline`.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// Measure how much each restored face still looks like the person (the cosine similarity of
    /// ArcFace IR-SE-50 embeddings, GPEN's identity network): auto (when model_ir_se50.pth is
    /// installed), on, or off.
    #[arg(long, default_value = "auto", value_name = "WHEN")]
    pub identity: config::IdentityChoice,
    /// Identity network weights (default: model_ir_se50.pth in the models folder).
    #[arg(long, value_name = "FILE")]
    pub identity_weights: Option<PathBuf>,
    /// Faces whose similarity to the original falls below S (-1 to 1; e.g. 0.6) are softened: their
    /// strength is lowered until they meet it, down to 0 (the original face), or only reported
    /// with --identity-guard flag. Needs the identity network.
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub identity_floor: Option<f32>,
    /// What to do with a face below --identity-floor: soften (default) or flag (only report it).
    #[arg(long, default_value = "soften", value_name = "MODE", requires = "identity_floor")]
    pub identity_guard: crate::identity::GuardMode,
}

impl IdentityArgs {
    pub fn apply(&self, config: RunConfig) -> RunConfig {
        RunConfig {
            identity: self.identity,
            identity_weights: self.identity_weights.clone(),
            identity_floor: self.identity_floor,
            identity_guard: self.identity_guard,
            ..config
        }
    }
}

/// `--parser-size`, for every command that loads the face parser.
#[derive(Debug, Clone, Args)]
pub struct ParserSizeArg {
    /// The face parser's input size in px (not stored in its weights): the released ParseNet's 512
    /// unless given; a parser trained at another size needs it.
    #[arg(long = "parser-size", value_name = "N")]
    pub size: Option<u32>,
}

/// How photos are upscaled: shared by `restore --upscale` and `upscale`.
#[derive(Debug, Clone, Args)]
pub struct SrArgs {
    /// SR weights (an RRDBNet file: GPEN's realesrnet_x1/x2/x4.pth, Real-ESRGAN's x4plus).
    #[arg(long, value_name = "FILE")]
    pub sr_weights: Option<PathBuf>,
    /// SR tiles of N x N input pixels instead of tiles planned from free memory (0: whole photos).
    /// A tile that runs out of memory is still halved.
    #[arg(long, value_name = "N")]
    pub tile: Option<u32>,
    /// Context around each tile in input pixels (the authors' 10).
    #[arg(long, default_value_t = 10, value_name = "P")]
    pub tile_pad: u32,
    /// Reproduce the authors' sizes: their SR output keeps an extra row and column (an unpad bug)
    /// and faces are cut from the input resized to that size. Default: exactly S x the input.
    #[arg(long)]
    pub gpen_exact: bool,
}

impl SrArgs {
    pub fn apply(&self, config: RunConfig) -> RunConfig {
        RunConfig { sr_weights: self.sr_weights.clone(), tile: self.tile, tile_pad: self.tile_pad, gpen_exact: self.gpen_exact, ..config }
    }
}

fn parse_threshold(s: &str) -> Result<f32, config::ConfigError> {
    let v: f32 = s.parse().map_err(|_| config::ConfigError::BadValue(format!("'{s}' is not a number")))?;
    if config::DETECT_THRESHOLD.contains(&v) {
        Ok(v)
    } else {
        Err(config::ConfigError::BadValue(format!("the threshold is a probability in [0, 1], got {v}")))
    }
}

/// The line that tells which detector and which paste mask a run uses.
pub fn face_path_line(config: &ResolvedRun) -> String {
    if config.aligned {
        return "aligned crops: no detection, no paste-back".into();
    }
    let detector = config.detector.describe();
    let detector = match &config.given_faces {
        Some(g) => format!("faces from the faces file for the {} photos it lists, else {detector}", g.len()),
        None => detector,
    };
    let mut line = format!("faces: {detector}; paste mask: {}", config.mask.describe());
    if let Some(path) = &config.identity {
        line += &match config.guard() {
            Some(g) if g.mode == crate::identity::GuardMode::Soften => {
                format!("; identity measured ({}), faces below {} softened", path.display(), g.floor)
            }
            Some(g) => format!("; identity measured ({}), faces below {} flagged", path.display(), g.floor),
            None => format!("; identity measured ({})", path.display()),
        };
    }
    if let Some(path) = &config.upscaler {
        let tiles = match config.tile {
            Some(0) => "whole photos".to_string(),
            Some(t) => format!("tiles of {t} px"),
            None => "tiles planned from memory".to_string(),
        };
        let exact = if config.gpen_exact { ", the authors' sizes" } else { "" };
        line += &format!("; background upscaled ×{} ({}, {tiles}{exact})", config.upscale.unwrap_or(1), path.display());
    }
    line
}

pub fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let selection = args.archive.select(&args.inputs, args.recursive, &args.output)?;
    for note in &selection.notes {
        super::output::note(note);
    }
    if selection.found == 0 {
        anyhow::bail!("no photos found in {:?} (looked for {})", args.inputs, crate::archive::inputs::IMAGE_EXTENSIONS.join(", "));
    }
    let photos = selection.photos;
    let inputs: Vec<PathBuf> = photos.iter().map(|p| p.path.clone()).collect();
    let config = args.config()?;
    // The user's to fix, before anything is loaded: bad usage (status 2).
    if !config.weights.exists() {
        return Err(super::exit::usage(crate::paths::missing_weights_help(&config.weights)));
    }
    // A checkpoint made for another task is a wrong file, like one that does not load: status 1.
    config.check_task().map_err(anyhow::Error::msg)?;
    let device = args.model.device()?; // applies --threads, checks the device before the worker starts
    // Every `auto` chosen once, here; the engine makes the same choices when it loads the models.
    let resolved = config.resolve().map_err(anyhow::Error::msg)?;
    let face_path = face_path_line(&resolved);
    if args.dry_run {
        return dry_run(&resolved, &photos, device);
    }
    if let Some(b) = args.compare_with.as_ref().filter(|b| !b.exists()) {
        return Err(super::exit::usage(crate::paths::missing_weights_help(b)));
    }
    let mut report = args.archive.start_report(&selection.shard, &photos, &config)?;
    if photos.is_empty() {
        return Ok(super::archive_args::nothing_to_do(report));
    }
    let engine = spawn(config.clone(), Components::real(), Box::new(|| {}));
    super::ctrl_c::cancel_on_ctrl_c(engine.commands.clone(), "cancelling after the current batch");
    let names: Vec<PathBuf> = inputs.clone();
    let compared = args.compare_with.is_some().then(|| photos.clone());
    let mut first = super::compare::FirstRun::default();
    let unit = if config.aligned { "crops" } else { "photos" };
    // Plans when they change, progress as a bar or plain lines, -q/-v (src/cli/output.rs).
    let mut out = super::output::RunOutput::stderr(inputs.len(), unit);
    let workers = workers_line(&config);
    out.info(&face_path);
    let ended = engine.run_to_end(photos, |event| {
        if let Some(r) = report.as_mut() {
            super::archive_args::record(r, event);
        }
        if compared.is_some() {
            first.record(event);
        }
        match event {
            EngineEvent::ModelLoaded { config: c, device, precision } => {
                out.info(&format!("{} {unit}; {c} on {device} ({precision}); {workers}", inputs.len()));
            }
            EngineEvent::Recommendation { batch, reason } => out.batch_plan(*batch, reason),
            EngineEvent::TilePlan { tile, reason } => out.tile_plan(*tile, reason),
            EngineEvent::Progress(p) => out.progress(p),
            EngineEvent::PhotoEnded { id, outcome: Outcome::Failed { error, .. }, .. } => {
                let path = &names[*id as usize];
                out.error(&format!("error: {}: {}", path.display(), without_path(&error.to_string(), path)));
            }
            EngineEvent::PhotoEnded { id, outcome: Outcome::Restored { identity, .. }, .. } => {
                for line in identity_lines(&names[*id as usize], identity, config.identity_floor) {
                    out.info(&line);
                }
            }
            EngineEvent::PhotoEnded { id, outcome: Outcome::NoFaces { .. }, .. } => {
                out.info(&format!("note: {}: no faces found; written unchanged", names[*id as usize].display()));
            }
            EngineEvent::OomRecovered { from, to } => out.info(&format!("out of memory with {from} faces; retrying with {to}")),
            EngineEvent::SrOomRecovered { id, oom_events, tile } => {
                out.info(&format!("{}: upscaling {}", names[*id as usize].display(), crate::upscale::describe_recovery(*oom_events, *tile)))
            }
            EngineEvent::CpuFallback { id, face } => {
                out.info(&format!("warning: {} face {face} did not fit the GPU alone; restored on the CPU", names[*id as usize].display()));
            }
            EngineEvent::MaskFallback { id, face, error } => {
                out.info(&format!(
                    "warning: {} face {face}: no parsing mask ({error}); pasted with the rectangle",
                    names[*id as usize].display()
                ));
            }
            EngineEvent::IdentityUnmeasured { id, face, error } => {
                out.info(&format!(
                    "warning: {} face {face}: identity not measured ({error}); pasted as restored",
                    names[*id as usize].display()
                ));
            }
            _ => {}
        }
    });
    out.finish();
    let summary = ended.summary;
    if let Some(e) = ended.setup_error {
        // The user's to fix (a missing weights file, a value, a device): bad usage, status 2.
        if e.is_usage() {
            return Err(super::exit::usage(e));
        }
        anyhow::bail!(e);
    }
    out.summary(&summary.to_string());
    args.archive.check_report(&report)?;
    let t = summary.times;
    let total = t.total().as_secs_f64().max(1e-9);
    let split: Vec<String> =
        t.named().iter().map(|(n, d)| format!("{n} {:.1} s ({:.0} %)", d.as_secs_f64(), 100.0 * d.as_secs_f64() / total)).collect();
    out.info(&format!("time: {}", split.join(", ")));
    let mut compare_ok = true;
    if let (Some(b), Some(photos)) = (&args.compare_with, &compared)
        && summary.photos_cancelled == 0
    {
        compare_ok = super::compare::compare(&config, b, photos, &first)?;
    }
    Ok(super::exit::of_run(summary.photos_failed > 0 || summary.faces_failed > 0 || !compare_ok, summary.photos_cancelled > 0))
}

/// `--dry-run`: what a run would do now, from the model file's shapes and a fresh memory reading;
/// nothing is loaded onto the device and nothing is written.
fn dry_run(config: &ResolvedRun, photos: &[crate::archive::Photo], device: tch::Device) -> anyhow::Result<ExitCode> {
    use crate::engine::{memory, memory_model::ModelSource, plan, planner::format_bytes};
    let outputs = crate::archive::inputs::plan_outputs(photos, &config.out_dir, config.output_format().extension());
    let inputs: Vec<PathBuf> = photos.iter().map(|p| p.path.clone()).collect();
    let inputs = inputs.as_slice();
    let done = outputs.iter().filter(|o| o.exists()).count();
    let unit = if config.aligned { "aligned crops" } else { "photos" };
    println!("{} {unit} found", inputs.len());
    if done > 0 {
        let what = if config.overwrite { "would be replaced (--overwrite)" } else { "would be kept" };
        println!("{done} of them already have a result in {}: {what}", config.out_dir.display());
    }
    let state = crate::checkpoint::read_state_dict(&config.weights)?;
    let gpen = crate::restore::checkpoint::infer_config(&state.shapes()).map_err(anyhow::Error::msg)?;
    drop(state);
    println!("model: {gpen}, {} ({})", config.precision, config.weights.display());
    let label = memory::device_label(device);
    let sample = memory::probe_for(device).sample();
    match &sample {
        Ok(s) => println!(
            "device: {} {label}, {} total, {} free",
            crate::device::device_name(device),
            format_bytes(s.total),
            format_bytes(s.free)
        ),
        Err(e) => println!("device: {} {label} (no memory reading: {e})", crate::device::device_name(device)),
    }
    let model = plan::memory_model_for(&gpen, config.precision, &label);
    let source = match &model.source {
        ModelSource::Calibrated { when, .. } => format!("calibrated on {label} at {when}"),
        ModelSource::Analytic => "analytic estimate; `gpen-studio calibrate` measures it".into(),
    };
    println!("{}", face_path_line(config));
    println!("memory model: {} fixed + {} per face ({source})", format_bytes(model.fixed), format_bytes(model.per_face));
    if let Some(p) = plan::parser_memory(config) {
        println!("face parser: {} of weights + {} per face, planned with GPEN's", format_bytes(p.weights), format_bytes(p.per_face));
    }
    if let Some(i) = plan::identity_memory(config, gpen.size as u32) {
        println!(
            "identity network: {} of weights + {} per face (two embeddings), planned with GPEN's",
            format_bytes(i.weights),
            format_bytes(i.per_face)
        );
    }
    let model = plan::run_model(model, config, device.is_cuda(), gpen.size as u32);
    let rec = plan::plan(sample.as_ref().ok().map(|s| (s.free, s.held)), device == tch::Device::Cpu, config, &model);
    println!("batch {}: {}", rec.batch, rec.reason);
    if let Some(line) = tile_plan_line(config, inputs, &rec, &model) {
        println!("{line}");
    }
    let budget = config.ram_budget.unwrap_or_else(|| crate::engine::plan::in_flight_capacity(config.memory_ratio));
    let how = if config.ram_budget.is_some() { "--ram-budget" } else { "memory ratio × the RAM available now" };
    println!("photos in flight: at most {} of RAM ({how})", format_bytes(budget));
    println!("{}", workers_line(config));
    println!("nothing was restored (--dry-run)");
    Ok(ExitCode::SUCCESS)
}

/// The SR tiles the first photo would get now (the engine plans each photo as it starts it, with
/// the same arithmetic).
fn tile_plan_line(
    config: &ResolvedRun,
    inputs: &[PathBuf],
    rec: &crate::engine::planner::Recommendation,
    model: &crate::engine::memory_model::MemoryModel,
) -> Option<String> {
    let sr = crate::upscale::read_config(config.upscaler.as_ref()?).ok()?;
    let (w, h) = image::ImageReader::open(inputs.first()?).ok()?.with_guessed_format().ok()?.into_dimensions().ok()?;
    let per_pixel = crate::engine::plan::sr_bytes_per_pixel(&sr, &crate::engine::memory::device_label(config.device.resolve().ok()?));
    let (_, plan) = crate::engine::admission::sr_tiles(config, w, h, rec, model, per_pixel, sr.multiple());
    Some(format!("upscale ×{}: {plan} (first photo, {w}x{h}; {per_pixel} B a pixel of input)", sr.scale))
}

fn workers_line(config: &RunConfig) -> String {
    match config.workers.count() {
        1 => "every step on one thread".to_string(),
        n => format!("{n} detection workers, {} writer(s)", config.workers.writers()),
    }
}

/// What `restore` says of a restored photo's faces' identity: with `-v` every face, otherwise the
/// faces below the floor (never silent about a face the guard acted on).
fn identity_lines(path: &Path, faces: &[Option<crate::identity::FaceIdentity>], floor: Option<f32>) -> Vec<String> {
    let verbose = super::output::verbosity() == super::output::Verbosity::Verbose;
    let mut lines = Vec::new();
    for (i, f) in faces.iter().enumerate() {
        let Some(f) = f else { continue };
        if !verbose && !f.below_floor {
            continue;
        }
        let mut line = format!("{} face {i}: identity {:.3}", path.display(), f.similarity);
        if f.below_floor {
            line += &format!(" below the floor {:.3}", floor.unwrap_or(f32::NAN));
        }
        if f.softened {
            line += &format!("; softened from strength {:.2} to {:.2} (identity {:.3})", f.asked_strength, f.strength, f.final_similarity);
        } else if f.below_floor {
            line += "; kept (--identity-guard flag)";
        }
        lines.push(line);
    }
    lines
}

/// A photo's error names its file already (`PATH: what is wrong`); the CLI's line names it once.
fn without_path<'a>(error: &'a str, path: &Path) -> &'a str {
    error.strip_prefix(&format!("{}: ", path.display())).unwrap_or(error)
}
