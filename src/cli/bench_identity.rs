//! `bench identity`: what the identity guard costs beside GPEN, back to back in one process: GPEN's
//! time a face, the identity network's time an embedding by batch, and from them the guard's cost a
//! face (two embeddings: the face that went in and the face as pasted; a softened face adds one
//! embedding a bisection step). Speed does not depend on the weights' values, so the released
//! shapes with placeholder weights measure what the released files cost.

use super::bench_face_path::timed;
use crate::identity::{IdentityNet, IrSeConfig, guard::BISECTION_STEPS};
use clap::Args;
use image::RgbImage;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct IdentityBenchArgs {
    #[command(flatten)]
    pub network: super::NetworkArgs,
    /// IR-SE weights to time; default: IR-SE-50's shapes with placeholder weights.
    #[arg(long, value_name = "FILE")]
    pub identity_weights: Option<std::path::PathBuf>,
    /// Faces per identity call (each face is two embeddings), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4", value_name = "N,...")]
    pub batch: Vec<usize>,
    /// Timed runs after one warm-up; the median is reported.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeat: usize,
}

pub fn run(args: IdentityBenchArgs) -> anyhow::Result<ExitCode> {
    let gpen = args.network.load()?;
    let device = gpen.device;
    let side = gpen.size();
    let net = match &args.identity_weights {
        Some(p) => IdentityNet::load(p, device)?,
        None => IdentityNet::with_config(IrSeConfig::ir_se50(), device),
    };
    let what = if args.identity_weights.is_some() { "from the file" } else { "IR-SE-50's shapes, placeholder weights" };
    println!(
        "bench identity: {} ({}), {side} px crops, on {}, libtorch {} intra-op threads, median of {} runs after a warm-up",
        crate::identity::check_description(net.config()),
        what,
        crate::device::device_name(device),
        tch::get_num_threads(),
        args.repeat
    );
    println!("{:.2} GMAC an embedding", net.config().macs() as f64 / 1e9);
    let face = RgbImage::from_fn(side, side, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let (gpen_s, _) = timed(args.repeat, || Ok(gpen.restore(&[&face])?))?;
    println!("{:<44} {:>10.1} ms", format!("GPEN {side} a face (batch 1)"), gpen_s * 1e3);
    let (blend_s, _) = timed(args.repeat, || Ok(crate::pipeline::paste::pasted_face(&face, &face, 200.0, 0.5)))?;
    println!("{:<44} {:>10.1} ms", "the face as pasted (blend, once a step)", blend_s * 1e3);
    println!(
        "{:<8} {:>14} {:>18} {:>9} {:>22} {:>9}",
        "faces", "ms/embedding", "guard ms a face", "of GPEN", "softened ms a face", "of GPEN"
    );
    for &n in &args.batch {
        let n = n.max(1);
        let faces = vec![&face; 2 * n];
        let (s, _) = timed(args.repeat, || Ok(net.embed(&faces)?))?;
        let per_embedding = s / (2 * n) as f64;
        let guard = 2.0 * per_embedding + blend_s;
        // Each bisection step embeds every face still searching in one call: one embedding and
        // one blend a face.
        let softened = guard + BISECTION_STEPS as f64 * (per_embedding + blend_s);
        println!(
            "{n:<8} {:>14.1} {:>18.1} {:>8.1}% {:>22.1} {:>8.1}%",
            per_embedding * 1e3,
            guard * 1e3,
            100.0 * guard / gpen_s,
            softened * 1e3,
            100.0 * softened / gpen_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
