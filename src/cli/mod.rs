//! The headless commands. Each subcommand lives in its own file; this one only parses and dispatches.

mod align;
mod archive_args;
mod bench;
mod bench_engine;
mod bench_face_path;
mod bench_gui;
mod bench_identity;
mod bench_photos;
mod bench_upscale;
mod calibrate;
mod compare;
mod completions;
mod ctrl_c;
mod detect;
pub mod exit;
mod generator;
mod identity;
mod info;
mod models;
pub mod output;
mod parse;
mod report;
mod restore;
mod upscale;

use crate::device::{DeviceChoice, Precision};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "gpen-studio",
    version,
    about = "Restore faces in old photos with GPEN (libtorch, CUDA or CPU)",
    long_about = "Restore faces in old photos with GPEN (libtorch, CUDA or CPU).\n\n\
                  Without a command the desktop window opens, with PHOTOS (files or folders) queued.",
    after_help = exit::AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Photos or folders to queue in the desktop window (when no command is given).
    #[arg(value_name = "PHOTOS")]
    pub photos: Vec<PathBuf>,
    /// Say more: every batch re-plan, not only the changes.
    #[arg(long, short = 'v', global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Say less: only errors and the summary.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the raw GPEN network on an NCHW float32 RGB tensor in [-1, 1] (.npy), for verification.
    Generator(generator::GeneratorArgs),
    /// Restore the faces in photos (files or folders) into an output folder.
    Restore(Box<restore::RestoreArgs>),
    /// Find faces (RetinaFace or MTCNN) and print their boxes, scores and five landmarks (`--json`
    /// writes what `restore --faces` reads).
    Detect(detect::DetectArgs),
    /// Cut GPEN-aligned face crops (faceNN.png) and their transforms (alignment.json) out of a photo.
    Align(align::AlignArgs),
    /// Upscale whole photos (GPEN's RealESRNet background SR, tiles planned from free memory), no faces.
    Upscale(upscale::UpscaleArgs),
    /// Run GPEN's face parser (ParseNet) on face crops; write each face's mask, labels and paste mask.
    Parse(parse::ParseArgs),
    /// How alike face crops are (GPEN's identity network, ArcFace IR-SE-50): the similarity of
    /// every pair, and with --json the embeddings.
    Identity(identity::IdentityArgs),
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
    /// What gpen-studio sees, for a bug report: libtorch, CUDA, cuDNN and driver versions (read
    /// from what is loaded), devices and their memory, installed models, MTCNN weights,
    /// calibrations, folders.
    Info(info::InfoArgs),
    /// Print a shell completion script (bash, zsh or fish) generated from the command line.
    Completions(completions::CompletionsArgs),
    /// Print the man page gpen-studio(1) (roff), generated from the command line.
    #[command(hide = true)]
    Man(completions::ManArgs),
}

/// The command line as parsed, completed and documented: [`Cli`] with the exit statuses under
/// every command's `--help` and man page too, not only the top one.
pub fn command() -> clap::Command {
    fn with_footer(cmd: clap::Command) -> clap::Command {
        cmd.mut_subcommands(|sub| with_footer(sub.after_help(exit::SHORT_HELP)))
    }
    with_footer(Cli::command())
}

/// `--device`/`-d`: where a command's networks run, the same flag in every command (the benchmarks
/// that time the CPU by default say so with `mut_arg`).
#[derive(Debug, Clone, Copy, Args)]
pub struct DeviceArg {
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(id = "device", long = "device", short = 'd', default_value = "auto", value_name = "DEVICE")]
    pub choice: DeviceChoice,
}

impl DeviceArg {
    /// The device; one that is not there is the user's to change (status 2).
    pub fn resolve(&self) -> anyhow::Result<tch::Device> {
        self.choice.resolve().map_err(exit::usage)
    }
}

/// Options shared by every command that runs GPEN.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// GPEN generator weights (.pth, .pt or .safetensors); size and width are read from the file.
    /// Default: GPEN-BFR-512.pth in the data directory (~/.local/share/gpen-studio/models).
    #[arg(long, short = 'w', value_name = "FILE")]
    pub weights: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
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
        // A device that is not there, or cannot run the precision: the user's to change (status 2).
        let device = self.device.resolve()?;
        self.precision.check_device(device).map_err(exit::usage)?;
        Ok(device)
    }

    pub fn load(&self) -> anyhow::Result<crate::restore::gpen::Gpen> {
        let path = self.weights_path();
        if !path.exists() {
            return Err(exit::usage(crate::paths::missing_weights_help(&path)));
        }
        let device = self.device()?;
        Ok(crate::restore::gpen::Gpen::load(&path, device, self.precision)?)
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
    pub fn load(&self) -> anyhow::Result<crate::restore::gpen::Gpen> {
        if !self.random_weights {
            return self.model.load();
        }
        let name = self.config.as_deref().unwrap_or("bfr-512");
        let config = crate::restore::network::GpenConfig::named(name).ok_or_else(|| {
            anyhow::anyhow!("unknown configuration '{name}'; known: {}", crate::restore::network::GpenConfig::NAMES.join(", "))
        })?;
        crate::restore::gpen::Gpen::random(config, self.model.device()?, self.model.precision, 0).map_err(anyhow::Error::msg)
    }
}

/// Parses the command line, runs the command, and maps the outcome to an exit status
/// ([`exit`]: 0 done, 1 failed, 2 bad usage, 130 cancelled, 141 closed pipe).
pub fn main() -> ExitCode {
    // A file-size limit (`ulimit -f`) would otherwise kill the whole batch with SIGXFSZ, leaving a
    // temporary file behind; ignored, a write past it fails with EFBIG like a full disk: one
    // photo's error, and the others go on.
    crate::sys::signals::ignore_file_size_signal();
    exit::die_on_closed_pipe(true); // --help | head, too
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    output::set_verbosity(output::Verbosity::from_flags(cli.verbose, cli.quiet));
    let Some(command) = cli.command else {
        // A mistyped command would otherwise open the window with a photo that does not exist.
        if let Some(missing) = cli.photos.iter().find(|p| !p.exists()) {
            eprintln!("error: '{}' is neither a command nor an existing photo or folder (see --help)", missing.display());
            return ExitCode::from(exit::USAGE);
        }
        exit::die_on_closed_pipe(false);
        return crate::gui::run(cli.photos);
    };
    let result = match command {
        Command::Generator(args) => generator::run(args),
        Command::Restore(args) => restore::run(*args),
        Command::Detect(args) => detect::run(args),
        Command::Align(args) => align::run(args),
        Command::Parse(args) => parse::run(args),
        Command::Identity(args) => identity::run(args),
        Command::Upscale(args) => upscale::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Models(cmd) => models::run(cmd),
        Command::Report(cmd) => report::run(cmd),
        Command::Info(args) => info::run(args),
        Command::Completions(args) => completions::run_completions(args),
        Command::Man(args) => completions::run_man(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::of_error(&err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_flags_go_before_or_after_the_command() {
        for args in [&["gpen-studio", "-q", "info"][..], &["gpen-studio", "info", "--quiet"]] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert!(cli.quiet && matches!(cli.command, Some(Command::Info(_))), "{args:?}");
        }
        let cli = Cli::try_parse_from(["gpen-studio", "--verbose", "restore", "a.jpg", "-o", "out"]).unwrap();
        assert!(cli.verbose && matches!(cli.command, Some(Command::Restore(_))));
        let err = Cli::try_parse_from(["gpen-studio", "-v", "-q", "info"]).unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE as i32);
        // Photos for the window, and a photo before a command is not taken for both.
        let cli = Cli::try_parse_from(["gpen-studio", "-v", "a.jpg", "b.jpg"]).unwrap();
        assert!(cli.command.is_none() && cli.photos.len() == 2);
        let cli = Cli::try_parse_from(["gpen-studio", "a.jpg", "info"]).unwrap();
        assert!(cli.command.is_none() && cli.photos.len() == 2, "{cli:?}");
    }
}
