//! The queue (left): add, drop, remove photos; a row per photo with thumbnail, faces and state.

use crate::gui::state::{Action, AppState, PhotoStatus};
use crate::gui::textures::{Slot, Textures};
use egui::{Color32, RichText, Sense, Ui, Vec2};

pub const ROW_HEIGHT: f32 = 44.0;

pub fn status_color(status: &PhotoStatus) -> Color32 {
    match status {
        PhotoStatus::Queued | PhotoStatus::Cancelled => Color32::GRAY,
        PhotoStatus::Detecting | PhotoStatus::Restoring => Color32::from_rgb(90, 170, 255),
        PhotoStatus::Done | PhotoStatus::Skipped => Color32::from_rgb(110, 200, 110),
        PhotoStatus::NoFaces => Color32::from_rgb(200, 180, 90),
        PhotoStatus::Failed(_) => Color32::from_rgb(240, 90, 80),
    }
}

pub fn queue_panel(ui: &mut Ui, state: &mut AppState, textures: &mut Textures, actions: &mut Vec<Action>) {
    ui.horizontal_wrapped(|ui| {
        if ui.button("Add photos…").clicked() {
            actions.push(Action::PickPhotos);
        }
        if ui.button("Add folder…").clicked() {
            actions.push(Action::PickFolder);
        }
        if ui
            .add_enabled(!state.rows.is_empty(), egui::Button::new("Clear"))
            .on_hover_text("Remove every photo that is not being processed")
            .clicked()
        {
            actions.push(Action::Clear);
        }
        if ui.button("Open output folder").on_hover_text(state.settings.run.out_dir.display().to_string()).clicked() {
            actions.push(Action::OpenOutputFolder);
        }
    });
    ui.checkbox(&mut state.settings.recursive, "Search sub-folders");
    let done = state.count(&PhotoStatus::Done);
    let failed = state.rows.iter().filter(|r| matches!(r.status, PhotoStatus::Failed(_))).count();
    ui.label(format!("{} photos · {} done · {} failed", state.rows.len(), done, failed));
    ui.separator();
    if state.rows.is_empty() {
        ui.add_space(20.0);
        ui.vertical_centered(|ui| {
            ui.label(RichText::new("Drop photos or folders here").heading());
            ui.label("or use Add photos… / Add folder…");
        });
        return;
    }
    let ctx = ui.ctx().clone();
    egui::ScrollArea::vertical().auto_shrink([false, false]).show_rows(ui, ROW_HEIGHT, state.rows.len(), |ui, range| {
        for index in range {
            let row = &mut state.rows[index];
            let selected = state.selected == Some(row.key);
            let response = ui
                .horizontal(|ui| {
                    ui.set_min_height(ROW_HEIGHT);
                    let thumb_size = Vec2::splat(ROW_HEIGHT - 4.0);
                    match &row.thumbnail {
                        Some(img) => {
                            let tex = textures.get(&ctx, row.key, Slot::Thumbnail, 0, img);
                            let size = tex.size_vec2();
                            let s = (thumb_size.x / size.x).min(thumb_size.y / size.y);
                            ui.add(egui::Image::new((tex.id(), size * s)).alt_text(format!("Thumbnail of {}", row.name)));
                        }
                        None => {
                            if !row.thumbnail_requested {
                                row.thumbnail_requested = true;
                                actions.push(Action::Thumbnail(row.key));
                            }
                            ui.allocate_exact_size(thumb_size, Sense::hover());
                        }
                    }
                    ui.vertical(|ui| {
                        let name = if selected { RichText::new(&row.name).strong() } else { RichText::new(&row.name) };
                        if ui
                            .add(egui::Button::selectable(selected, name).truncate())
                            .on_hover_text(row.path.display().to_string())
                            .clicked()
                        {
                            actions.push(Action::Select(row.key));
                        }
                        ui.horizontal(|ui| {
                            let status = ui.label(RichText::new(row.status.label()).color(status_color(&row.status)).small());
                            if let PhotoStatus::Failed(error) = &row.status {
                                status.on_hover_text(error);
                            }
                            if row.faces_known {
                                ui.label(RichText::new(format!("{} faces", row.faces.len())).small());
                            }
                            if !row.face_errors.is_empty() {
                                ui.label(RichText::new(format!("{} face errors", row.face_errors.len())).small().color(Color32::YELLOW))
                                    .on_hover_text(row.face_errors.join("\n"));
                            }
                        });
                    });
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        let removable = !row.status.in_flight();
                        if ui
                            .add_enabled(removable, egui::Button::new("Remove").small())
                            .on_hover_text(format!("Remove {}", row.name))
                            .clicked()
                        {
                            actions.push(Action::Remove(row.key));
                        }
                    });
                })
                .response;
            if selected {
                ui.painter().rect_stroke(response.rect, 3.0, ui.visuals().selection.stroke, egui::StrokeKind::Inside);
            }
        }
    });
}
