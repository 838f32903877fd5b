//! The one way a caller drives a whole run: hand the engine the photos, show every event to the
//! caller until the run finishes. `restore`, `upscale` and the benchmarks start an engine of their
//! own and shut it down after ([`EngineHandle::run_to_end`]); the window's face tools run aside on
//! the window's engine ([`run_aside`]), so one engine owns the device. The window's own runs are
//! driven frame by frame from its event loop.

use super::worker::{AsideRun, Command, EngineEvent, EngineHandle};
use crate::archive::Photo;
use crate::config::RunConfig;
use crate::error::SetupError;
use crate::pipeline::{PhotoId, Summary};
use crossbeam_channel::{Receiver, Sender};

/// How a driven run ended.
#[derive(Debug)]
pub struct RunEnd {
    pub summary: Summary,
    /// Why the run could not start, or the engine's crash; `None` when it ran.
    pub setup_error: Option<SetupError>,
}

impl EngineHandle {
    /// Restores `photos` (photo id = index) and shows every event to `on_event`, in order, until the
    /// run finishes; then shuts the engine down.
    pub fn run_to_end(self, photos: Vec<Photo>, on_event: impl FnMut(&EngineEvent)) -> RunEnd {
        self.send(Command::EnqueuePhotos(photos.into_iter().enumerate().map(|(i, p)| (i as PhotoId, p)).collect()));
        self.send(Command::Start);
        let end = drive(&self.events, on_event);
        self.shutdown();
        end
    }
}

/// Runs `photos` (photo id = index) with `config` on the engine behind `commands`, after whatever it
/// is running now, and shows the run's events to `on_event` until it finishes. The engine's own
/// queue, settings and listener are not touched.
pub fn run_aside(commands: &Sender<Command>, config: RunConfig, photos: Vec<Photo>, on_event: impl FnMut(&EngineEvent)) -> RunEnd {
    let (events, listen) = crossbeam_channel::unbounded();
    // An engine that is gone drops the job, and with it the only sender: `drive` sees the crash.
    let _ = commands.send(Command::RunAside(Box::new(AsideRun { config, photos, events })));
    drive(&listen, on_event)
}

/// Hands every event to `on_event` until the run's `Finished`. An engine whose thread is gone ends
/// the run as a crash (a `ModelError` event with [`SetupError::Crashed`]) rather than waiting forever.
fn drive(events: &Receiver<EngineEvent>, mut on_event: impl FnMut(&EngineEvent)) -> RunEnd {
    let mut setup_error = None;
    let summary = loop {
        let Ok(event) = events.recv() else {
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
    RunEnd { summary, setup_error }
}
