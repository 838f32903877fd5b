//! `bench gui`: the window's frame time with a long queue, drawn headless (egui with no screen, the
//! way the window's tests drive it), so the cost of a frame is a number anyone can print again.

use crate::config::{ConfigError, RunConfig};
use crate::gui::Studio;
use crate::gui::helpers::Helpers;
use crate::gui::state::{AppState, UiSettings};
use anyhow::Context;
use clap::Args;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct GuiBenchArgs {
    /// Photos in the queue: small generated PNGs (96×72) in a temporary folder.
    #[arg(long, default_value_t = 1000)]
    pub photos: usize,
    /// Frames timed once the rows on screen have their thumbnails.
    #[arg(long, default_value_t = 120)]
    pub frames: usize,
    /// The window's size in points, WIDTHxHEIGHT.
    #[arg(long, default_value = "1360x860", value_parser = parse_size)]
    pub size: (f32, f32),
}

fn parse_size(s: &str) -> Result<(f32, f32), ConfigError> {
    let (w, h) = s.split_once('x').ok_or_else(|| ConfigError::BadValue("expected WIDTHxHEIGHT, e.g. 1360x860".into()))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|v| *v >= 100.0)
            .ok_or(ConfigError::BadValue(format!("{v:?} is not a size of 100 points or more")))
    };
    Ok((parse(w)?, parse(h)?))
}

pub fn run(args: GuiBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.photos > 0 && args.frames > 0, "--photos and --frames must be at least 1");
    // The queue's photos go to a scratch folder that is removed afterwards, as `bench pipeline`'s.
    let scratch = std::env::temp_dir().join(format!("gpen-studio-bench-gui-{}", std::process::id()));
    let result = bench_in(&args, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn bench_in(args: &GuiBenchArgs, dir: &Path) -> anyhow::Result<ExitCode> {
    let folder = dir.join("queue");
    std::fs::create_dir_all(&folder)?;
    for i in 0..args.photos {
        image::RgbImage::from_fn(96, 72, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, (i % 256) as u8]))
            .save(folder.join(format!("photo{i:05}.png")))
            .context("writing the queue's photos")?;
    }
    // No engine: the window's commands go nowhere and no event comes; drawing is what is measured.
    // The model file is missing, so the banner shows as on a first start.
    let settings = UiSettings {
        run: RunConfig { weights: dir.join("no-model.pth"), out_dir: dir.join("out"), ..UiSettings::default().run },
        ..UiSettings::default()
    };
    let (commands, _commands_rx) = crossbeam_channel::unbounded();
    let (_events_tx, events) = crossbeam_channel::unbounded();
    let mut studio = Studio::new(AppState::new(settings), commands, events, Helpers::start(Arc::new(|| {}), false));
    let ctx = egui::Context::default();
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(args.size.0, args.size.1));
    let frame = |studio: &mut Studio| {
        let input = egui::RawInput { screen_rect: Some(screen), ..Default::default() };
        let output = ctx.run_ui(input, |ui| studio.frame(ui));
        // A real window tessellates every frame before painting; that is part of its cost.
        std::hint::black_box(ctx.tessellate(output.shapes, output.pixels_per_point));
    };

    studio.add_paths(&[folder]);
    let waited = Instant::now();
    while studio.state.walks_pending > 0 || studio.state.rows.iter().any(|r| r.thumbnail_requested && r.thumbnail.is_none()) {
        frame(&mut studio);
        std::thread::sleep(Duration::from_millis(5));
    }
    frame(&mut studio);
    let thumbnails = studio.state.rows.iter().filter(|r| r.thumbnail.is_some()).count();
    println!(
        "bench gui: {} photos queued, {thumbnails} thumbnails on screen (after {:.0} ms), window {}x{} points",
        studio.state.rows.len(),
        waited.elapsed().as_secs_f64() * 1e3,
        args.size.0,
        args.size.1
    );

    let mut times: Vec<f64> = (0..args.frames)
        .map(|_| {
            let t = Instant::now();
            frame(&mut studio);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!("frame time over {} frames: median {:.2} ms, p95 {:.2} ms, max {:.2} ms", times.len(), at(0.5), at(0.95), at(1.0));
    Ok(ExitCode::SUCCESS)
}
