//! The headless commands. Each subcommand lives in its own file; this one only parses and dispatches.

mod align;
mod archive_args;
mod bench;
mod bench_engine;
mod bench_face_path;
mod bench_upscale;
mod bench_photos;
mod calibrate;
mod detect;
mod generator;
mod models;
mod parse;
mod report;
mod restore;
mod upscale;

use crate::device::{DeviceChoice, Precision};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "gpen-studio",
    version,
    about = "Restore faces in old photos with GPEN (libtorch, CUDA or CPU)",
    long_about = "Restore faces in old photos with GPEN (libtorch, CUDA or CPU).\n\n\
                  Without a command the desktop window opens, with PHOTOS (files or folders) queued.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Photos or folders to queue in the desktop window (when no command is given).
    #[arg(value_name = "PHOTOS")]
    pub photos: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the raw GPEN network on an NCHW float32 RGB tensor in [-1, 1] (.npy), for verification.
    Generator(generator::GeneratorArgs),
    /// Restore the faces in photos (files or folders) into an output folder.
    Restore(restore::RestoreArgs),
    /// Find faces (RetinaFace or MTCNN) and print their boxes, scores and five landmarks (`--json`
    /// writes what `restore --faces` reads).
    Detect(detect::DetectArgs),
    /// Cut GPEN-aligned face crops (faceNN.png) and their transforms (alignment.json) out of a photo.
    Align(align::AlignArgs),
    /// Upscale whole photos (GPEN's RealESRNet background SR, tiles planned from free memory), no faces.
    Upscale(upscale::UpscaleArgs),
    /// Run GPEN's face parser (ParseNet) on face crops; write each face's mask, labels and paste mask.
    Parse(parse::ParseArgs),
    /// Measure speed and memory.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Measure GPEN's memory per batch on a device and store it for the batch planner.
    Calibrate(calibrate::CalibrateArgs),
    /// List, download, verify and import GPEN weights (the models folder in the data directory).
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Work with `restore --report` files: merge the reports of shards.
    #[command(subcommand)]
    Report(report::ReportCommand),
}

/// Options shared by every command that runs GPEN.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// GPEN generator weights (.pth, .pt or .safetensors); size and width are read from the file.
    /// Default: GPEN-BFR-512.pth in the data directory (~/.local/share/gpen-studio/models).
    #[arg(long, short = 'w', value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, short = 'd', default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,
    /// Precision of the convolutions: fp32, bf16, or fp16 on CUDA.
    #[arg(long, default_value = "fp32", value_name = "P")]
    pub precision: Precision,
    /// CPU threads for libtorch (default: libtorch's choice, one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<i32>,
}

impl ModelArgs {
    pub fn weights_path(&self) -> PathBuf {
        self.weights.clone().unwrap_or_else(crate::paths::default_weights)
    }

    /// Resolves the device and applies the thread setting.
    pub fn device(&self) -> anyhow::Result<tch::Device> {
        if let Some(n) = self.threads {
            tch::set_num_threads(n.max(1));
        }
        let device = self.device.resolve().map_err(anyhow::Error::msg)?;
        self.precision.check_device(device).map_err(anyhow::Error::msg)?;
        Ok(device)
    }

    pub fn load(&self) -> anyhow::Result<crate::gpen::Gpen> {
        let path = self.weights_path();
        if !path.exists() {
            anyhow::bail!(crate::paths::missing_weights_help(&path));
        }
        let device = self.device()?;
        Ok(crate::gpen::Gpen::load(&path, device, self.precision)?)
    }
}

/// The network of the measuring commands (`bench`, `calibrate`): a weights file, or GPEN's initial
/// random weights of a released configuration (speed and memory do not depend on the values).
#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Use GPEN's initial random weights for a released configuration instead of a file.
    #[arg(long, requires = "config")]
    pub random_weights: bool,
    /// Configuration for --random-weights: bfr-256, bfr-512, bfr-1024, bfr-2048, ...
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,
}

impl NetworkArgs {
    pub fn load(&self) -> anyhow::Result<crate::gpen::Gpen> {
        if !self.random_weights {
            return self.model.load();
        }
        let name = self.config.as_deref().unwrap_or("bfr-512");
        let config = crate::model::GpenConfig::named(name).ok_or_else(|| {
            anyhow::anyhow!("unknown configuration '{name}'; known: {}", crate::model::GpenConfig::NAMES.join(", "))
        })?;
        crate::gpen::Gpen::random(config, self.model.device()?, self.model.precision, 0).map_err(anyhow::Error::msg)
    }
}

/// Parses the command line, runs the command, and maps the outcome to an exit status:
/// 0 success, 1 some inputs failed or the command could not run, 2 usage errors (from clap).
pub fn main() -> ExitCode {
    // A file-size limit (`ulimit -f`) would otherwise kill the whole batch with SIGXFSZ, leaving a
    // temporary file behind; ignored, a write past it fails with EFBIG like a full disk: one
    // photo's error, and the others go on.
    // SAFETY: setting a signal's disposition to SIG_IGN before any other thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        // A mistyped command would otherwise open the window with a photo that does not exist.
        if let Some(missing) = cli.photos.iter().find(|p| !p.exists()) {
            eprintln!("error: '{}' is neither a command nor an existing photo or folder (see --help)", missing.display());
            return ExitCode::from(2);
        }
        return crate::gui::run(cli.photos);
    };
    let result = match command {
        Command::Generator(args) => generator::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Align(args) => align::run(args),
        Command::Parse(args) => parse::run(args),
        Command::Upscale(args) => upscale::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Models(cmd) => models::run(cmd),
        Command::Report(cmd) => report::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
