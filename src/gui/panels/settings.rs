//! Settings: model file (with the configuration read from it), device, precision, strength, output.

use crate::device::{DeviceChoice, Precision};
use crate::gui::state::{Action, AppState, FormatChoice, ModelInfo, short_path};
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
    let strength = ui.add(egui::Slider::new(&mut s.strength, 0.0..=1.0).text("Strength"))
        .on_hover_text("Blend of the restored face over the original (1 = fully restored)");
    if strength.changed() {
        actions.push(Action::SettingsChanged);
    }
    ui.separator();
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
        });
        if choice == FormatChoice::Jpeg {
            output_changed |= ui.add(egui::Slider::new(&mut settings.jpeg_quality, 50..=100).text("JPEG quality")).drag_stopped();
        }
        if output_changed {
            settings.set_format(choice);
        }
        let s = &mut settings.run;
        output_changed |= ui.checkbox(&mut s.save_faces, "Also save face crops").changed();
        output_changed |= ui.checkbox(&mut s.overwrite, "Overwrite existing outputs").changed();
    });
    if output_changed {
        actions.push(Action::SettingsChanged);
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
