//! The top bar: Start / Pause / Cancel, progress "N of M photos", faces per second, ETA; and the
//! banner shown while there is no model file, which downloads one.

use crate::engine::worker::Command;
use crate::gui::download::{DownloadState, mb};
use crate::gui::state::{Action, AppState, RunState, displayable};
use egui::{Color32, RichText, Ui};

pub fn run_controls(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let run = &state.run;
    ui.horizontal(|ui| {
        ui.heading("GPEN Studio");
        ui.separator();
        let can_start = !run.running && state.waiting() > 0 && state.weights_exist && !state.face_tool_running();
        let start = ui.add_enabled(can_start, egui::Button::new(RichText::new("Start").strong()));
        if start.clicked() {
            actions.push(Action::Start);
        }
        if state.face_tool_running() {
            start.on_disabled_hover_text("The face tool is running; one run on the device at a time.");
        }
        if run.paused {
            if ui.add_enabled(run.running, egui::Button::new("Resume")).clicked() {
                actions.push(Action::Engine(Command::Resume));
            }
        } else if ui.add_enabled(run.running, egui::Button::new("Pause")).clicked() {
            actions.push(Action::Engine(Command::Pause));
        }
        if ui
            .add_enabled(run.running, egui::Button::new("Cancel"))
            .on_hover_text("Stop after the current step; nothing partial is written")
            .clicked()
        {
            actions.push(Action::Engine(Command::Cancel));
        }
        ui.separator();
        progress(ui, run, state.waiting());
    });
}

fn progress(ui: &mut Ui, run: &RunState, waiting: usize) {
    let p = &run.progress;
    // During a run the engine's count; between runs what a Start would do, else the last run's.
    let (done, total) = if run.running || waiting == 0 { (p.photos_done, p.photos_total) } else { (0, waiting) };
    let fraction = if total > 0 { done as f32 / total as f32 } else { 0.0 };
    let text = format!("{done} of {total} photos");
    ui.add(egui::ProgressBar::new(fraction).text(text).desired_width(260.0));
    if run.running || p.photos_done > 0 {
        ui.label(format!("{} of {} faces · {:.2} faces/s", p.faces_done, p.faces_total, p.faces_per_second));
        if let Some(eta) = p.eta.filter(|_| run.running) {
            let s = eta.as_secs();
            ui.label(format!("ETA {}:{:02}", s / 60, s % 60));
        }
    }
    if run.paused {
        ui.label(RichText::new("paused").color(Color32::YELLOW));
    }
}

/// Where to get GPEN weights, while the model file is missing: download the offered model (with
/// progress and cancel; resumed when a `.part` is kept), or open a file.
pub fn missing_model_banner(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let download = &state.download;
    egui::Frame::new().fill(Color32::from_rgb(70, 50, 20)).inner_margin(8.0).corner_radius(4.0).show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(RichText::new("No GPEN model yet").strong().color(Color32::from_rgb(255, 210, 120)));
            match (&download.state, &download.offer) {
                (DownloadState::Running(r), _) => {
                    let bar = match r.fraction() {
                        Some(f) => egui::ProgressBar::new(f),
                        None => egui::ProgressBar::new(0.0).animate(true),
                    };
                    ui.add(bar.text(r.text()).desired_width(320.0));
                    // Named apart from the run's Cancel in the same bar.
                    let cancel = ui
                        .add_enabled(!r.cancelling(), egui::Button::new("Cancel download"))
                        .on_hover_text("The part downloaded so far is kept to resume");
                    if cancel.clicked() {
                        actions.push(Action::CancelDownload);
                    }
                }
                (state, Some(entry)) if entry.url.is_some() => {
                    let label = if download.kept > 0 {
                        format!("Resume download ({} MB kept)", mb(download.kept))
                    } else if matches!(state, DownloadState::Failed { .. }) {
                        "Retry".to_string()
                    } else {
                        format!("Download {}", entry.name)
                    };
                    let hover = format!("{} ({}) into {}", entry.name, entry.task, download.source.store.dir.display());
                    if ui.button(RichText::new(label).strong()).on_hover_text(hover).clicked() {
                        actions.push(Action::DownloadModel);
                    }
                }
                _ => {}
            }
            if ui.button("Open weights file…").clicked() {
                actions.push(Action::PickWeights);
            }
        });
        match &download.state {
            DownloadState::Failed { message } => {
                ui.colored_label(Color32::from_rgb(255, 120, 100), displayable(message));
            }
            DownloadState::Cancelled { kept } => {
                ui.label(format!("Download cancelled; {} MB kept to resume.", mb(*kept)));
            }
            _ => {}
        }
        // A model published only by hand (ModelScope): how to get it.
        if let Some(manual) = download.offer.as_ref().and_then(|e| e.manual.as_ref()) {
            ui.label(manual);
        }
        ui.label(crate::paths::missing_weights_help(&state.settings.run.weights));
        ui.label("Face detection previews work without it. See the README, section \"Model weights\".");
    });
}
