//! The one way a command drives the engine through a whole run: enqueue, start, hand every event to
//! the caller until the run finishes, shut the engine down. `restore`, the benchmarks and the
//! window's face tool use it; the window's own runs are driven frame by frame from its event loop.

use super::worker::{Command, EngineEvent, EngineHandle};
use crate::archive::Photo;
use crate::error::SetupError;
use crate::pipeline::{PhotoId, Summary};

/// How a driven run ended.
#[derive(Debug)]
pub struct RunEnd {
    pub summary: Summary,
    /// Why the run could not start, or the engine's crash; `None` when it ran.
    pub setup_error: Option<SetupError>,
}

impl EngineHandle {
    /// Restores `photos` (photo id = index) and shows every event to `on_event`, in order, until the
    /// run finishes. An engine whose thread is gone ends the run as a crash (a `ModelError` event
    /// with [`SetupError::Crashed`]) rather than waiting forever.
    pub fn run_to_end(self, photos: Vec<Photo>, mut on_event: impl FnMut(&EngineEvent)) -> RunEnd {
        self.send(Command::EnqueuePhotos(photos.into_iter().enumerate().map(|(i, p)| (i as PhotoId, p)).collect()));
        self.send(Command::Start);
        let mut setup_error = None;
        let summary = loop {
            let Ok(event) = self.events.recv() else {
                let crash = SetupError::Crashed("its thread ended before the run did".into());
                on_event(&EngineEvent::ModelError(crash.clone()));
                setup_error = Some(crash);
                break Summary::default();
            };
            on_event(&event);
            match event {
                EngineEvent::ModelError(e) => setup_error = Some(e),
                EngineEvent::Finished(summary) => break summary,
                _ => {}
            }
        };
        self.shutdown();
        RunEnd { summary, setup_error }
    }
}
