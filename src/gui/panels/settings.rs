//! Settings: model file (with the configuration read from it), device, precision, strength, the face
//! path (detector, paste mask and their optional add-ons), output.

use crate::config::{DetectorChoice, MaskChoice};
use crate::device::{DeviceChoice, Precision};
use crate::gui::state::{Action, AppState, FormatChoice, ModelInfo, short_path};
use crate::identity::GuardMode;
use egui::{RichText, Ui};

pub fn settings_panel(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let editable = !state.run.running;
    let settings = &mut state.settings;
    let s = &mut settings.run;
    ui.horizontal(|ui| {
        ui.label("Model");
        ui.label(RichText::new(short_path(&s.weights)).monospace()).on_hover_text(s.weights.display().to_string());
    });
    if ui.add_enabled(editable, egui::Button::new("Open weights file…")).clicked() {
        actions.push(Action::PickWeights);
    }
    match &state.model_info {
        ModelInfo::Config(c) => ui.label(RichText::new(c).small()),
        ModelInfo::Invalid(e) => ui.colored_label(egui::Color32::from_rgb(240, 90, 80), RichText::new(e).small()),
        ModelInfo::Reading => ui.label(RichText::new("reading the model file…").small()),
        ModelInfo::Unknown => ui.label(""),
    };
    if let Some(m) = &state.run.model_loaded {
        ui.label(RichText::new(format!("Loaded: {m}")).small());
    }
    let mut model_changed = false;
    ui.add_enabled_ui(editable, |ui| {
        egui::ComboBox::from_label("Device").selected_text(device_text(s.device, &state.cuda_devices)).show_ui(ui, |ui| {
            model_changed |= ui.selectable_value(&mut s.device, DeviceChoice::Auto, "auto").changed();
            model_changed |= ui.selectable_value(&mut s.device, DeviceChoice::Cpu, "CPU").changed();
            for i in 0..state.cuda_devices.len() {
                let label = device_text(DeviceChoice::Cuda(i), &state.cuda_devices);
                model_changed |= ui.selectable_value(&mut s.device, DeviceChoice::Cuda(i), label).changed();
            }
        });
        egui::ComboBox::from_label("Precision").selected_text(s.precision.to_string()).show_ui(ui, |ui| {
            for p in [Precision::Fp32, Precision::Fp16, Precision::Bf16] {
                model_changed |= ui.selectable_value(&mut s.precision, p, p.to_string()).changed();
            }
        });
    });
    if model_changed {
        actions.push(Action::ModelChanged);
    }
    let strength = ui
        .add(egui::Slider::new(&mut s.strength, 0.0..=1.0).text("Strength"))
        .on_hover_text("Blend of the restored face over the original (1 = fully restored)");
    if strength.changed() {
        actions.push(Action::SettingsChanged);
    }
    ui.separator();
    face_path(ui, state, editable, actions);
    ui.separator();
    let settings = &mut state.settings;
    let mut output_changed = false;
    ui.add_enabled_ui(editable, |ui| {
        let s = &settings.run;
        ui.horizontal(|ui| {
            ui.label("Output");
            ui.label(RichText::new(short_path(&s.out_dir)).monospace()).on_hover_text(s.out_dir.display().to_string());
        });
        if ui.button("Choose output folder…").clicked() {
            actions.push(Action::PickOutputDir);
        }
        let mut choice = FormatChoice::of(settings.run.format);
        ui.horizontal(|ui| {
            output_changed |= ui.selectable_value(&mut choice, FormatChoice::Png, "PNG").changed();
            output_changed |= ui.selectable_value(&mut choice, FormatChoice::Jpeg, "JPEG").changed();
            output_changed |= ui.selectable_value(&mut choice, FormatChoice::Webp, "WebP").changed();
            output_changed |= ui.selectable_value(&mut choice, FormatChoice::Tiff, "TIFF").changed();
        });
        if choice == FormatChoice::Jpeg {
            output_changed |= ui.add(egui::Slider::new(&mut settings.jpeg_quality, 50..=100).text("JPEG quality")).drag_stopped();
        }
        if output_changed {
            settings.set_format(choice);
        }
        let s = &mut settings.run;
        output_changed |= ui.checkbox(&mut s.save_faces, "Also save face crops").changed();
        output_changed |= ui
            .checkbox(&mut s.strip_metadata, "Strip metadata")
            .on_hover_text(
                "Leave the original's EXIF and XMP out of the results and say nothing there of what was done. \
                 By default both are kept, with gpen-studio as Software and an entry in the XMP history.",
            )
            .changed();
        output_changed |= ui.checkbox(&mut s.overwrite, "Overwrite existing outputs").changed();
    });
    if output_changed {
        actions.push(Action::SettingsChanged);
    }
}

/// Detector and paste mask, what each resolves to now, and the add-ons that change them.
fn face_path(ui: &mut Ui, state: &mut AppState, editable: bool, actions: &mut Vec<Action>) {
    let s = &mut state.settings.run;
    let mut changed = false;
    ui.add_enabled_ui(editable, |ui| {
        egui::ComboBox::from_label("Face detector").selected_text(detector_text(s.detector)).show_ui(ui, |ui| {
            for d in [DetectorChoice::Auto, DetectorChoice::RetinaFace, DetectorChoice::Mtcnn] {
                changed |= ui.selectable_value(&mut s.detector, d, detector_text(d)).changed();
            }
        });
        egui::ComboBox::from_label("Paste mask").selected_text(mask_text(s.mask)).show_ui(ui, |ui| {
            for m in [MaskChoice::Auto, MaskChoice::Parser, MaskChoice::Rectangle] {
                changed |= ui.selectable_value(&mut s.mask, m, mask_text(m)).changed();
            }
        });
        if s.mask != MaskChoice::Rectangle {
            changed |= parser_size(ui, &mut s.parser_size);
        }
    });
    ui.add_enabled_ui(editable, |ui| {
        egui::ComboBox::from_label("Upscale background").selected_text(upscale_text(s.upscale)).show_ui(ui, |ui| {
            for u in [None, Some(2), Some(4), Some(1)] {
                changed |= ui.selectable_value(&mut s.upscale, u, upscale_text(u)).changed();
            }
        });
    });
    let mut floor_moved = false;
    ui.add_enabled_ui(editable, |ui| {
        let installed = s.identity_weights.clone().unwrap_or_else(|| crate::paths::model_file(crate::identity::IDENTITY_FILE)).is_file();
        let mut on = s.identity_floor.is_some();
        let hint = if installed {
            "Soften faces that no longer look like the person: a face whose likeness to the original (ArcFace \
             IR-SE-50) falls below the floor gets a lower strength, just enough to meet it (--identity-floor)"
        } else {
            "Needs the identity network: download ArcFace-IR-SE50 below"
        };
        if ui.add_enabled(installed || on, egui::Checkbox::new(&mut on, "Identity guard")).on_hover_text(hint).changed() {
            s.identity_floor = on.then_some(DEFAULT_FLOOR);
            changed = true;
        }
        if let Some(floor) = s.identity_floor.as_mut() {
            floor_moved |= ui
                .add(egui::Slider::new(floor, 0.0..=1.0).text("Identity floor"))
                .on_hover_text("Cosine similarity to the original face below which a face is softened (or only flagged)")
                .changed();
            egui::ComboBox::from_label("Below the floor").selected_text(guard_text(s.identity_guard)).show_ui(ui, |ui| {
                for m in [GuardMode::Soften, GuardMode::Flag] {
                    floor_moved |= ui.selectable_value(&mut s.identity_guard, m, guard_text(m)).changed();
                }
            });
        }
    });
    if floor_moved {
        actions.push(Action::SettingsChanged);
    }
    let mut now = |r: Result<String, crate::error::ConfigError>| match r {
        Ok(text) => ui.label(RichText::new(text).small()),
        Err(e) => ui.colored_label(egui::Color32::from_rgb(240, 90, 80), RichText::new(e.to_string()).small()),
    };
    let choices = s.choices();
    now(choices.detector.map(|d| format!("Faces found with {}", d.describe())));
    now(choices.mask.map(|m| format!("Pasted with the {}", m.describe())));
    if s.upscale.is_some() {
        now(choices.upscaler.map(|p| format!("Background upscaled with {}", p.map(|p| p.display().to_string()).unwrap_or_default())));
    }
    now(choices.identity.map(|p| match p {
        Some(p) => format!("Each face's identity measured with {}", short_path(&p)),
        None => "Identity not measured (the identity network is not installed)".into(),
    }));
    if changed {
        actions.push(Action::ModelChanged);
    }
    let download = &state.download;
    let running = download.running().map(|r| r.name.clone());
    for entry in download.source.catalogue.entries.iter().filter(|e| e.is_addon()) {
        let installed = download.source.store.path_of(entry).is_file();
        ui.horizontal(|ui| {
            ui.label(RichText::new(&entry.name).strong()).on_hover_text(&entry.task);
            if installed {
                ui.label(RichText::new("installed").small());
            } else if running.as_deref() == Some(entry.name.as_str()) {
                let text = download.running().map(|r| r.text()).unwrap_or_default();
                ui.label(RichText::new(text).small());
            } else if ui.add_enabled(running.is_none(), egui::Button::new("Download")).on_hover_text(&entry.task).clicked() {
                actions.push(Action::DownloadAddon(entry.name.clone()));
            }
        });
        ui.label(RichText::new(entry.task.strip_prefix("optional: ").unwrap_or(&entry.task)).small().weak());
    }
}

/// The floor the identity guard starts at when switched on: CodeFormer's mean identity score on
/// CelebA-Test (0.60, reference/users.md), a likeness most restorers keep.
const DEFAULT_FLOOR: f32 = 0.6;

fn guard_text(m: GuardMode) -> &'static str {
    match m {
        GuardMode::Soften => "soften the face",
        GuardMode::Flag => "only flag it",
    }
}

/// The face parser's input size: the released ParseNet's unless the user sets one (it is not in
/// the weights, so a parser trained at another size needs it). Whether it changed.
fn parser_size(ui: &mut Ui, size: &mut Option<u32>) -> bool {
    use crate::mask::parser::RELEASED_SIZE;
    ui.horizontal(|ui| {
        let mut given = size.is_some();
        let hint = "The face parser's input size in px. It is not stored in its weights: the released ParseNet runs at \
                    512; a parser trained at another size needs its size here (--parser-size).";
        let mut changed = ui.checkbox(&mut given, "Parser size").on_hover_text(hint).changed();
        if changed {
            *size = given.then_some(RELEASED_SIZE);
        }
        match size.as_mut() {
            Some(px) => {
                let field = egui::DragValue::new(px).range(crate::config::PARSER_SIZE).speed(16.0).suffix(" px");
                changed |= ui.add(field).changed();
            }
            None => {
                ui.label(RichText::new(format!("{RELEASED_SIZE} px (the released ParseNet)")).small().weak());
            }
        }
        changed
    })
    .inner
}

fn upscale_text(u: Option<u32>) -> String {
    match u {
        None => "off".into(),
        Some(1) => "×1 (clean, same size)".into(),
        Some(s) => format!("×{s} (RealESRNet)"),
    }
}

fn detector_text(d: DetectorChoice) -> &'static str {
    match d {
        DetectorChoice::Auto => "auto (RetinaFace when installed)",
        DetectorChoice::RetinaFace => "RetinaFace (GPEN's)",
        DetectorChoice::Mtcnn => "MTCNN",
    }
}

fn mask_text(m: MaskChoice) -> &'static str {
    match m {
        MaskChoice::Auto => "auto (face parser when installed)",
        MaskChoice::Parser => "face parser (GPEN's)",
        MaskChoice::Rectangle => "feathered rectangle",
    }
}

fn device_text(choice: DeviceChoice, cuda: &[String]) -> String {
    match choice {
        DeviceChoice::Auto => "auto".into(),
        DeviceChoice::Cpu => "CPU".into(),
        DeviceChoice::Cuda(i) => match cuda.get(i) {
            Some(name) => format!("cuda:{i} {name}"),
            None => format!("cuda:{i} (not found)"),
        },
    }
}
