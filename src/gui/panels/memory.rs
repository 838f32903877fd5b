//! The memory panel (right): the device, a gauge of memory used by others / by us / free with the
//! budget line, the history plot, the recommended batch size and why, the ratio slider, the batch
//! override and the out-of-memory recoveries.

use crate::engine::worker::Command;
use crate::gui::state::{Action, MemoryState, UiSettings, gib};
use egui::{Color32, Rect, RichText, Sense, Stroke, Ui, pos2, vec2};
use egui_plot::{Legend, Line, Plot, PlotPoints};

const OTHERS: Color32 = Color32::from_rgb(200, 130, 60);
const OURS: Color32 = Color32::from_rgb(80, 150, 240);
const FREE: Color32 = Color32::from_rgb(60, 70, 60);

pub fn memory_panel(ui: &mut Ui, memory: &MemoryState, running: bool, settings: &mut UiSettings, actions: &mut Vec<Action>) {
    ui.heading("Memory");
    match &memory.latest {
        None => {
            ui.label("Waiting for the first memory reading…");
        }
        Some(s) => {
            if s.cpu_mode {
                ui.label(RichText::new("CPU mode").strong())
                    .on_hover_text("No NVIDIA GPU in use: faces are restored on the CPU, the budget is system RAM");
                ui.label(format!("System RAM, {} total", gib(s.total)));
            } else {
                ui.label(RichText::new(&s.device).strong());
                ui.label(format!("VRAM {} total{}", gib(s.total), s.utilization.map(|u| format!(" · GPU busy {u} %")).unwrap_or_default()));
            }
            gauge(ui, s.total, s.used_by_others, s.used_by_us, s.free, settings.run.memory_ratio);
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(OTHERS, format!("others {}", gib(s.used_by_others)));
                ui.colored_label(OURS, format!("gpen-studio {}", gib(s.used_by_us)));
                ui.label(format!("free {}", gib(s.free)));
                ui.label(format!("| budget {}", gib((s.available() as f64 * settings.run.memory_ratio) as u64)));
            });
        }
    }
    history_plot(ui, memory);
    ui.separator();
    match (running, &memory.recommendation, &memory.live) {
        (true, Some((batch, reason)), _) => {
            ui.label(RichText::new(format!("Batch: {}", faces(*batch))).strong());
            ui.label(RichText::new(reason).small());
        }
        (_, _, Some((batch, reason))) => {
            ui.label(RichText::new(format!("Batch now: {}", faces(*batch))).strong())
                .on_hover_text("What a run started now would use: the selected model, the memory free now and this ratio");
            ui.label(RichText::new(reason).small());
        }
        _ => {
            ui.label("Batch: planned once the model file is read");
        }
    }
    if settings.run.upscale.is_some() {
        let shown = if running { memory.tiles.as_ref() } else { memory.live_tiles.as_ref() };
        if let Some(tiles) = shown {
            ui.label(RichText::new(if running { "Background SR tiles" } else { "Background SR tiles now" }).strong());
            ui.label(RichText::new(tiles).small());
        }
    }
    let mut ratio = settings.run.memory_ratio;
    let slider = ui
        .add(egui::Slider::new(&mut ratio, crate::config::MEMORY_RATIO).text("Memory ratio").fixed_decimals(2))
        .on_hover_text("Share of the free memory that batches may use");
    if slider.changed() {
        settings.run.memory_ratio = ratio;
        actions.push(Action::SettingsChanged);
    }
    ui.horizontal(|ui| {
        let mut fixed = settings.run.batch_override.is_some();
        let mut batch = settings.run.batch_override.unwrap_or(memory.recommendation.as_ref().map(|r| r.0).unwrap_or(4));
        let toggled = ui.checkbox(&mut fixed, "Fixed batch").changed();
        let dragged = ui
            .add_enabled(fixed, egui::DragValue::new(&mut batch).range(1..=crate::config::MAX_BATCH_OVERRIDE_UI).suffix(" faces"))
            .changed();
        if toggled || dragged {
            settings.run.batch_override = fixed.then_some(batch);
            actions.push(Action::SettingsChanged);
        }
    });
    if let Some(c) = &memory.calibrated {
        ui.label(RichText::new(c).small());
    }
    if ui.button("Calibrate").on_hover_text("Measure this model's memory per face on this device (takes a few seconds)").clicked() {
        actions.push(Action::Engine(Command::Calibrate));
    }
    if !memory.events.is_empty() {
        ui.label(RichText::new("Memory events").strong());
        for e in memory.events.iter().rev().take(6) {
            ui.label(RichText::new(e).small().color(Color32::YELLOW));
        }
    }
}

/// A bar: used by others | used by us | free, with a line where the budget ends.
fn gauge(ui: &mut Ui, total: u64, others: u64, ours: u64, free: u64, ratio: f64) {
    let (rect, _) = ui.allocate_exact_size(vec2(ui.available_width(), 22.0), Sense::hover());
    let total = total.max(1) as f32;
    let x = |bytes: u64| rect.left() + rect.width() * (bytes as f32 / total).clamp(0.0, 1.0);
    let p = ui.painter();
    p.rect_filled(rect, 3.0, FREE);
    let others_end = x(others);
    let ours_end = x(others + ours);
    p.rect_filled(Rect::from_min_max(rect.min, pos2(others_end, rect.max.y)), 3.0, OTHERS);
    p.rect_filled(Rect::from_min_max(pos2(others_end, rect.min.y), pos2(ours_end, rect.max.y)), 0.0, OURS);
    let used = total as u64 - free.min(total as u64);
    let budget_x = x(used + (free as f64 * ratio) as u64);
    p.line_segment([pos2(budget_x, rect.top() - 3.0), pos2(budget_x, rect.bottom() + 3.0)], Stroke::new(2.5, Color32::WHITE));
    p.rect_stroke(rect, 3.0, Stroke::new(1.0, Color32::from_gray(120)), egui::StrokeKind::Inside);
}

fn history_plot(ui: &mut Ui, memory: &MemoryState) {
    let gb = |b: u64| b as f64 / (1u64 << 30) as f64;
    let used: Vec<[f64; 2]> = memory.history.iter().map(|p| [p.t, gb(p.used_total)]).collect();
    let ours: Vec<[f64; 2]> = memory.history.iter().map(|p| [p.t, gb(p.used_by_us)]).collect();
    let batch: Vec<[f64; 2]> = memory.history.iter().filter_map(|p| p.batch.map(|b| [p.t, b as f64])).collect();
    Plot::new("memory-history")
        .height(120.0)
        .include_y(0.0)
        .y_axis_label("GiB")
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .show(ui, |p| {
            p.line(Line::new("used", PlotPoints::from(used)).color(OTHERS));
            p.line(Line::new("by us", PlotPoints::from(ours)).color(OURS));
        });
    Plot::new("batch-history")
        .height(70.0)
        .include_y(0.0)
        .y_axis_label("batch")
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .show(ui, |p| {
            p.line(Line::new("batch size", PlotPoints::from(batch)).color(Color32::from_rgb(120, 220, 120)));
        });
}

/// "1 face", "8 faces".
fn faces(n: usize) -> String {
    if n == 1 { "1 face".into() } else { format!("{n} faces") }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_face_is_singular() {
        assert_eq!(super::faces(1), "1 face");
        assert_eq!(super::faces(32), "32 faces");
    }
}
