//! What a run says it did, in each result's XMP history (and `Software`): the tools by file name
//! (never paths: results travel), the strength, and what happened to that photo.

use crate::config::{DetectorUse, MaskUse, ResolvedRun};
use crate::photo::HistoryEntry;
use std::path::Path;

/// The run's part of every history entry it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHistory {
    /// How faces are restored: the generator, the strength, the detector and the paste mask.
    restore: String,
    /// How the background is upscaled, when it is.
    upscale: Option<String>,
    /// The run only upscales (`upscale`): no face was looked for.
    only_upscale: bool,
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

impl RunHistory {
    pub fn of(run: &ResolvedRun) -> Self {
        let detector = match run.detector {
            DetectorUse::RetinaFace(_) => "RetinaFace",
            DetectorUse::Mtcnn => "MTCNN",
        };
        let mask = match run.mask {
            MaskUse::Parser(_) => "face-parsing mask (ParseNet)",
            MaskUse::Rectangle => "feathered rectangle",
        };
        let mut restore =
            format!("{} at strength {:.2}; faces found with {detector}; pasted with the {mask}", file_name(&run.weights), run.strength);
        // The guard may paste a face at a lower strength: the history says so.
        if let Some(g) = run.guard().filter(|g| g.mode == crate::identity::GuardMode::Soften) {
            restore += &format!("; faces below identity {:.2} softened", g.floor);
        }
        let upscale = run.upscaler.as_deref().map(|p| format!("upscaled ×{} with {}", run.upscale.unwrap_or(1), file_name(p)));
        RunHistory { restore, upscale, only_upscale: run.upscale_only }
    }

    /// The entry for a photo with `faces` faces restored.
    pub fn entry(&self, faces: usize) -> HistoryEntry {
        let upscale = self.upscale.as_deref().map(|u| format!("; {u}")).unwrap_or_default();
        match (faces, &self.upscale) {
            (n, _) if n > 0 => {
                HistoryEntry { action: "edited", parameters: format!("restored {n} face(s) with {}{upscale}", self.restore) }
            }
            (_, Some(u)) if self.only_upscale => HistoryEntry { action: "edited", parameters: u.clone() },
            (_, Some(_)) => HistoryEntry { action: "edited", parameters: format!("no face found{upscale}") },
            (_, None) => HistoryEntry { action: "saved", parameters: "no face found; saved unchanged".into() },
        }
    }
}
