//! `restore --compare-with B`: the same photos restored by a second generator, with the faces the
//! first run found (so both restore the same faces), and for each photo a side-by-side sheet of
//! the two results with each face's identity under each model.

use crate::archive::Photo;
use crate::config::{GivenFaces, RunConfig};
use crate::detect::Face;
use crate::engine::worker::{Components, EngineEvent, spawn};
use crate::identity::FaceIdentity;
use crate::pipeline::{Outcome, PhotoId};
use image::RgbImage;
use std::collections::HashMap;
use std::path::Path;

/// What the first run (model A) said of each photo: its faces and how it ended.
#[derive(Debug, Default)]
pub struct FirstRun {
    found: HashMap<PhotoId, Vec<Face>>,
    ended: HashMap<PhotoId, Outcome>,
}

impl FirstRun {
    pub fn record(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::FacesFound { id, faces, .. } => {
                self.found.insert(*id, faces.clone());
            }
            EngineEvent::PhotoEnded { id, outcome, .. } => {
                self.ended.insert(*id, outcome.clone());
            }
            _ => {}
        }
    }
}

/// Restores the photos A restored with `weights_b` into `OUT/compare-<B>/` (the one
/// [`crate::archive::inputs::compare_folder`]), with A's faces, and writes
/// `OUT/compare/<key>.png` (A | B) for each photo both restored. Prints each photo's faces'
/// identity under both. Returns whether everything compared was written.
pub fn compare(config_a: &RunConfig, weights_b: &Path, photos: &[Photo], first: &FirstRun) -> anyhow::Result<bool> {
    let mut given = GivenFaces::default();
    let mut ids = Vec::new();
    for (id, photo) in photos.iter().enumerate() {
        let id = id as PhotoId;
        if let (Some(Outcome::Restored { .. }), Some(faces)) = (first.ended.get(&id), first.found.get(&id)) {
            given.insert(photo.path.to_string_lossy().into_owned(), faces.clone());
            ids.push(id);
        }
    }
    if ids.is_empty() {
        super::output::note("nothing to compare: model A restored no photo");
        return Ok(true);
    }
    let out_b = crate::archive::inputs::compare_folder(&config_a.out_dir, weights_b);
    let config_b = RunConfig {
        weights: weights_b.to_path_buf(),
        out_dir: out_b.clone(),
        given_faces: Some(std::sync::Arc::new(given)),
        ..config_a.clone()
    };
    config_b.validate().map_err(super::exit::usage)?;
    let chosen: Vec<Photo> = ids.iter().map(|&id| photos[id as usize].clone()).collect();
    super::output::note(format_args!("comparing with {}: {} photos into {}", weights_b.display(), chosen.len(), out_b.display()));
    let engine = spawn(config_b, Components::real(), Box::new(|| {}));
    let mut ended_b: HashMap<PhotoId, Outcome> = HashMap::new();
    let end = engine.run_to_end(chosen, |event| {
        if let EngineEvent::PhotoEnded { id, outcome, .. } = event {
            ended_b.insert(*id, outcome.clone());
        }
    });
    if let Some(e) = end.setup_error {
        anyhow::bail!("model B ({}): {e}", weights_b.display());
    }
    let sheets = config_a.out_dir.join("compare");
    let mut all_ok = true;
    for (k, &id) in ids.iter().enumerate() {
        let photo = &photos[id as usize];
        let (Some(Outcome::Restored { output: a, identity: ia, .. }), Some(b)) = (first.ended.get(&id), ended_b.get(&(k as PhotoId)))
        else {
            continue;
        };
        let Outcome::Restored { output: b, identity: ib, .. } = b else {
            eprintln!("error: {}: model B: {}", photo.path.display(), describe(b));
            all_ok = false;
            continue;
        };
        let sheet = sheets.join(&photo.key).with_extension("png");
        match write_sheet(a, b, &sheet) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("error: {}: {e}", sheet.display());
                all_ok = false;
                continue;
            }
        }
        println!("{}: A | B in {}", photo.path.display(), sheet.display());
        for (i, (x, y)) in ia.iter().zip(ib).enumerate() {
            if let (Some(x), Some(y)) = (x, y) {
                println!("  face {i}: identity A {} | B {}", identity_text(x), identity_text(y));
            }
        }
    }
    Ok(all_ok)
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Failed { error, .. } => error.to_string(),
        Outcome::Cancelled => "cancelled".into(),
        other => format!("{other:?}"),
    }
}

fn identity_text(i: &FaceIdentity) -> String {
    if i.softened {
        format!("{:.3} (softened to {:.3} at strength {:.2})", i.similarity, i.final_similarity, i.strength)
    } else {
        format!("{:.3}", i.similarity)
    }
}

/// A and B side by side, 8 px apart (B scaled to A's height when the two differ), written as PNG.
fn write_sheet(a: &Path, b: &Path, sheet: &Path) -> anyhow::Result<()> {
    let limits = crate::photo::ReadLimits::default();
    let a = crate::photo::read_photo(a, &limits)?.pixels;
    let b = crate::photo::read_photo(b, &limits)?.pixels;
    let joined = side_by_side(&a, &b);
    if let Some(dir) = sheet.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::photo::write_photo(sheet, &joined, crate::photo::OutputFormat::Png, &Default::default())?;
    Ok(())
}

/// `a` and `b` side by side on black, 8 px apart; `b` resized to `a`'s height when they differ.
pub fn side_by_side(a: &RgbImage, b: &RgbImage) -> RgbImage {
    const GAP: u32 = 8;
    let b = if b.height() == a.height() {
        b.clone()
    } else {
        let w = (b.width() as f64 * a.height() as f64 / b.height() as f64).round().max(1.0) as u32;
        image::imageops::resize(b, w, a.height(), image::imageops::FilterType::Triangle)
    };
    let mut out = RgbImage::new(a.width() + GAP + b.width(), a.height());
    image::imageops::replace(&mut out, a, 0, 0);
    image::imageops::replace(&mut out, &b, (a.width() + GAP) as i64, 0);
    out
}
