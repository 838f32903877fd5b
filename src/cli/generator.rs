use super::ModelArgs;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tch::{Kind, Tensor};

#[derive(Debug, Args)]
pub struct GeneratorArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input tensor: float32 [B, 3, S, S] RGB in [-1, 1], NCHW, as .npy.
    #[arg(long, short = 'i', value_name = "IN.npy")]
    pub input: PathBuf,
    /// Where to write the raw (unclamped) output as float32 .npy.
    #[arg(long, short = 'o', value_name = "OUT.npy")]
    pub output: PathBuf,
}

pub fn run(args: GeneratorArgs) -> anyhow::Result<ExitCode> {
    let gpen = args.model.load()?;
    let x = Tensor::read_npy(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let x = x.f_to_kind(Kind::Float)?;
    let y = gpen.forward(&x).with_context(|| format!("running {} on {:?}", gpen.config(), x.size()))?;
    crate::paths::write_atomically(&args.output, |tmp| y.write_npy(tmp)).with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("{} -> {} {:?}", args.input.display(), args.output.display(), y.size());
    Ok(ExitCode::SUCCESS)
}
