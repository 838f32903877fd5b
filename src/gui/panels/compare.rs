//! The compare view (centre): the selected photo before and after — or restored by the run's model
//! (A) and by a second one (B) — side by side with synchronized zoom and pan, or one image with a
//! split line; detected faces outlined; a strip of face crops, each
//! with a switch that leaves the face out of the run (its outline then shows it off), its own
//! strength, its identity as the last run measured it (coloured by the guard's floor), and the face
//! tools (colorize, inpaint).

use crate::engine::worker::Preview;
use crate::gui::state::{Action, CompareView, PhotoStatus, Row};

use crate::gui::textures::{Slot, Textures};
use crate::weights::Task;
use egui::{Color32, Pos2, Rect, RichText, Sense, Stroke, TextureHandle, Ui, Vec2, pos2, vec2};

const FACE_STRIP_HEIGHT: f32 = 84.0;

/// Outline of faces switched off.
const OFF: Color32 = Color32::from_rgb(150, 150, 150);
const ON: Color32 = Color32::from_rgb(80, 220, 120);
/// Identity: at or above the floor, softened by the guard, below it and kept.
const KEPT_LIKENESS: Color32 = Color32::from_rgb(80, 220, 120);
const SOFTENED: Color32 = Color32::from_rgb(240, 180, 60);
const BELOW_FLOOR: Color32 = Color32::from_rgb(240, 90, 80);

/// The run's settings the view shows each face against.
#[derive(Debug, Clone)]
pub struct FaceSettings {
    /// The run's strength (a face without its own).
    pub strength: f32,
    /// The identity guard's floor, if set.
    pub floor: Option<f32>,
    /// The second generator of A | B, when one is chosen.
    pub model_b: Option<std::path::PathBuf>,
}

/// What the strip says of a face's identity, and its colour: the similarity as pasted, with the
/// guard's change when it softened the face.
pub fn identity_label(id: &crate::identity::FaceIdentity) -> (String, Color32) {
    if id.softened {
        (format!("identity {:.2} -> {:.2} (strength {:.2})", id.similarity, id.final_similarity, id.strength), SOFTENED)
    } else if id.below_floor {
        (format!("identity {:.2} (below the floor)", id.similarity), BELOW_FLOOR)
    } else {
        (format!("identity {:.2}", id.similarity), KEPT_LIKENESS)
    }
}

pub fn compare_panel(
    ui: &mut Ui,
    view: &mut CompareView,
    row: Option<&mut Row>,
    editable: bool,
    settings: FaceSettings,
    textures: &mut Textures,
    actions: &mut Vec<Action>,
) {
    let Some(row) = row else {
        ui.centered_and_justified(|ui| ui.label(RichText::new("Select or drop a photo to compare it before and after").heading()));
        return;
    };
    if row.before.is_none() && !row.preview_requested && matches!(row.status, PhotoStatus::Queued | PhotoStatus::Cancelled) {
        row.preview_requested = true;
        actions.push(Action::DetectPreview(row.key));
    }
    let ctx = ui.ctx().clone();
    let before = row.before.as_ref().map(|p| (textures.get(&ctx, row.key, Slot::Before, row.revision, &p.image), p));
    let after = row.after.as_ref().map(|p| (textures.get(&ctx, row.key, Slot::After, row.revision, &p.image), p));
    let b_after = match &row.b {
        Some(Ok(b)) => b.after.as_ref().map(|p| (textures.get(&ctx, row.key, Slot::B, row.revision, &p.image), p)),
        _ => None,
    };

    ui.horizontal(|ui| {
        ui.heading(&row.name);
        ui.label(RichText::new(row.status.label()).color(super::queue::status_color(&row.status)));
        if row.faces_known {
            ui.label(format!("{} faces detected", row.faces.len()));
            if !row.faces_off.is_empty() {
                ui.label(format!("({} switched off)", row.faces_off.len()));
            }
        }
    });
    ui.horizontal(|ui| {
        ui.selectable_value(&mut view.split_mode, false, "Side by side");
        ui.selectable_value(&mut view.split_mode, true, "Split");
        ui.checkbox(&mut view.show_boxes, "Outline faces");
        ui.add(egui::Slider::new(&mut view.zoom, 1.0..=16.0).logarithmic(true).text("Zoom"));
        if ui.button("Fit").clicked() {
            view.zoom = 1.0;
            view.center = [0.5, 0.5];
        }
        if view.split_mode {
            ui.add(egui::Slider::new(&mut view.split, 0.0..=1.0).show_value(false).text("Split position"));
        }
    });
    model_b_bar(ui, view, row, editable, &settings, actions);
    // A | B: the run's result on the left, model B's on the right, in place of before | after.
    let (before, after) = if view.ab_mode && settings.model_b.is_some() { (after, b_after) } else { (before, after) };
    let labels = if view.ab_mode && settings.model_b.is_some() { ["A", "B"] } else { ["before", "after"] };
    if let PhotoStatus::Failed(error) = &row.status {
        ui.colored_label(Color32::from_rgb(240, 90, 80), format!("Failed: {error}"));
    }
    for e in row.face_errors.iter().take(3) {
        ui.colored_label(Color32::YELLOW, e);
    }
    ui.horizontal(|ui| {
        let describe = |p: Option<&(TextureHandle, &Preview)>, what: &str, missing: &str| match p {
            Some((_, p)) => format!("{what} {}×{}", p.image.width(), p.image.height()),
            None => format!("{what}: {missing}"),
        };
        ui.label(describe(before.as_ref(), "Before", "loading preview…"));
        ui.label("·");
        let missing = match row.status {
            PhotoStatus::NoFaces => "no faces to restore",
            PhotoStatus::Failed(_) => "failed",
            _ => "not restored yet",
        };
        ui.label(describe(after.as_ref(), "After", missing));
        if let Some(out) = &row.output {
            ui.label("·");
            ui.label(RichText::new(out.display().to_string()).small()).on_hover_text("Output file");
        }
    });

    let strip = !row.faces.is_empty() && before.is_some();
    let avail = ui.available_size() - vec2(0.0, if strip { FACE_STRIP_HEIGHT + 8.0 } else { 0.0 });
    let (area, _) = ui.allocate_exact_size(avail.max(vec2(64.0, 64.0)), Sense::hover());
    let faces = if view.show_boxes { row.faces.as_slice() } else { &[] };
    let off = &row.faces_off;
    if view.split_mode {
        let response = ui.interact(area, ui.scope_id().with("split-view"), Sense::click_and_drag());
        pan_zoom(ui, view, &response, before.as_ref().or(after.as_ref()).map(|t| t.0.size_vec2()));
        let split_x = area.left() + area.width() * view.split;
        let left = Rect::from_min_max(area.min, pos2(split_x, area.max.y));
        let right = Rect::from_min_max(pos2(split_x, area.min.y), area.max);
        if let Some((tex, p)) = &before {
            draw_image(ui, area, left, view, tex, p, faces, off);
        }
        match &after {
            Some((tex, p)) => draw_image(ui, area, right, view, tex, p, faces, off),
            None => placeholder(ui, right, "after: not restored yet"),
        }
        ui.painter().line_segment([pos2(split_x, area.top()), pos2(split_x, area.bottom())], Stroke::new(2.0, Color32::WHITE));
    } else {
        let half = (area.width() - 8.0) / 2.0;
        let left = Rect::from_min_size(area.min, vec2(half, area.height()));
        let right = Rect::from_min_size(pos2(area.min.x + half + 8.0, area.min.y), vec2(half, area.height()));
        for (rect, image, label, salt) in [(left, &before, labels[0], "before-view"), (right, &after, labels[1], "after-view")] {
            let response = ui.interact(rect, ui.scope_id().with(salt), Sense::click_and_drag());
            pan_zoom(ui, view, &response, image.as_ref().map(|t| t.0.size_vec2()));
            match image {
                Some((tex, p)) => draw_image(ui, rect, rect, view, tex, p, faces, off),
                None => placeholder(
                    ui,
                    rect,
                    match label {
                        "before" => "loading preview…",
                        "B" => "not restored with B yet",
                        _ => "not restored yet",
                    },
                ),
            }
            ui.painter().text(
                rect.left_top() + vec2(6.0, 4.0),
                egui::Align2::LEFT_TOP,
                label,
                egui::FontId::proportional(14.0),
                Color32::WHITE,
            );
        }
    }
    if strip && let Some((btex, bp)) = &before {
        face_strip(ui, row, editable, &settings, btex, bp, after.as_ref().map(|(t, p)| (t, *p)), actions);
    }
}

/// Drag pans, the wheel zooms (around the view's centre), a double click fits.
fn pan_zoom(ui: &Ui, view: &mut CompareView, response: &egui::Response, image_size: Option<Vec2>) {
    let Some(size) = image_size else { return };
    let fit = (response.rect.width() / size.x).min(response.rect.height() / size.y);
    let shown = size * fit * view.zoom;
    if response.dragged() {
        let d = response.drag_delta();
        view.center[0] = (view.center[0] - d.x / shown.x).clamp(0.0, 1.0);
        view.center[1] = (view.center[1] - d.y / shown.y).clamp(0.0, 1.0);
    }
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            view.zoom = (view.zoom * (scroll * 0.004).exp()).clamp(1.0, 16.0);
        }
    }
    if response.double_clicked() {
        view.zoom = 1.0;
        view.center = [0.5, 0.5];
    }
}

/// Where the photo lies on screen for a view area.
fn image_rect(area: Rect, view: &CompareView, size: Vec2) -> Rect {
    let fit = (area.width() / size.x).min(area.height() / size.y);
    let shown = size * fit * view.zoom;
    let min = area.center() - vec2(view.center[0] * shown.x, view.center[1] * shown.y);
    Rect::from_min_size(min, shown)
}

#[allow(clippy::too_many_arguments)]
fn draw_image(
    ui: &Ui,
    area: Rect,
    clip: Rect,
    view: &CompareView,
    tex: &TextureHandle,
    preview: &Preview,
    faces: &[crate::detect::Face],
    off: &std::collections::BTreeSet<usize>,
) {
    let painter = ui.painter_at(clip);
    painter.rect_filled(clip, 0.0, Color32::from_gray(20));
    let rect = image_rect(area, view, tex.size_vec2());
    painter.image(tex.id(), rect, Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0)), Color32::WHITE);
    // Face boxes are in photo pixels; the preview is `scale` of the photo.
    let to_screen = |x: f32, y: f32| {
        let px = x * preview.scale / preview.image.width() as f32;
        let py = y * preview.scale / preview.image.height() as f32;
        pos2(rect.left() + px * rect.width(), rect.top() + py * rect.height())
    };
    for (i, face) in faces.iter().enumerate() {
        let [x1, y1, x2, y2] = face.bbox;
        let r = Rect::from_two_pos(to_screen(x1, y1), to_screen(x2, y2));
        let is_off = off.contains(&i);
        let color = if is_off { OFF } else { ON };
        painter.rect_stroke(r, 2.0, Stroke::new(if is_off { 1.0 } else { 2.0 }, color), egui::StrokeKind::Outside);
        if is_off {
            // Crossed out: this face is left as it is.
            painter.line_segment([r.left_top(), r.right_bottom()], Stroke::new(1.0, OFF));
            painter.line_segment([r.right_top(), r.left_bottom()], Stroke::new(1.0, OFF));
        }
        if r.width() > 18.0 {
            let label = if is_off { format!("{} off", i + 1) } else { format!("{}", i + 1) };
            painter.text(r.left_top() + vec2(2.0, -2.0), egui::Align2::LEFT_BOTTOM, label, egui::FontId::proportional(12.0), color);
        }
    }
}

fn placeholder(ui: &Ui, rect: Rect, text: &str) {
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(28));
    painter.text(rect.center(), egui::Align2::CENTER_CENTER, text, egui::FontId::proportional(16.0), Color32::GRAY);
}

/// Before → after crops of each face, cut from the previews with the face boxes, each with its
/// switch, its strength and its identity.
#[allow(clippy::too_many_arguments)] // the strip's row, settings, textures and actions, each used
fn face_strip(
    ui: &mut Ui,
    row: &Row,
    editable: bool,
    settings: &FaceSettings,
    btex: &TextureHandle,
    bp: &Preview,
    after: Option<(&TextureHandle, &Preview)>,
    actions: &mut Vec<Action>,
) {
    egui::ScrollArea::horizontal().id_salt("face-strip").max_height(FACE_STRIP_HEIGHT + 26.0).show(ui, |ui| {
        ui.horizontal(|ui| {
            for (i, face) in row.faces.iter().enumerate().take(64) {
                ui.vertical(|ui| {
                    let mut on = !row.faces_off.contains(&i);
                    let switch = ui
                        .add_enabled(editable, egui::Checkbox::new(&mut on, format!("Face {}", i + 1)))
                        .on_hover_text("Restore this face (switched off, it is left as it is; before a run)");
                    if switch.changed() {
                        actions.push(Action::ToggleFace(row.key, i));
                    }
                    ui.horizontal(|ui| {
                        let mut tool = |ui: &mut Ui, label: &str, task: Task, hover: &str| {
                            if ui.add_enabled(editable, egui::Button::new(label).small()).on_hover_text(hover).clicked() {
                                actions.push(Action::OpenFaceTool(row.key, i, task));
                            }
                        };
                        tool(
                            ui,
                            "Colorize",
                            Task::Colorize,
                            "Colorize this face with GPEN-Colorization (saved in the output folder's face-tools)",
                        );
                        tool(ui, "Inpaint…", Task::Inpaint, "Brush over a damaged part of this face and let GPEN-Inpainting fill it in");
                    });
                    face_strength(ui, row, i, editable, settings.strength, actions);
                    let hover = match settings.floor {
                        Some(f) => format!("Likeness to the original (ArcFace IR-SE-50 cosine similarity); the floor is {f:.2}"),
                        None => "Likeness to the original (ArcFace IR-SE-50 cosine similarity); no floor set".to_string(),
                    };
                    // With a model B restored, each face's identity under A and under B.
                    let b_identity = match &row.b {
                        Some(Ok(b)) if settings.model_b.is_some() => Some(b_face_identity(row, b, i)),
                        _ => None,
                    };
                    if let Some(id) = row.identity.get(i).copied().flatten() {
                        let (text, colour) = identity_label(&id);
                        let text = if b_identity.is_some() { format!("A {text}") } else { text };
                        ui.label(RichText::new(text).small().color(colour)).on_hover_text(&hover);
                    }
                    if let Some(Some(id)) = b_identity {
                        let (text, colour) = identity_label(&id);
                        ui.label(RichText::new(format!("B {text}")).small().color(colour)).on_hover_text(&hover);
                    }
                });
                let side = FACE_STRIP_HEIGHT - 4.0;
                let (rect, _) = ui.allocate_exact_size(vec2(side * 2.0 + 14.0, side), Sense::hover());
                let b = Rect::from_min_size(rect.min, Vec2::splat(side));
                let a = Rect::from_min_size(rect.min + vec2(side + 14.0, 0.0), Vec2::splat(side));
                crop(ui, b, btex, bp, face.bbox);
                ui.painter().text(
                    pos2(b.right() + 7.0, b.center().y),
                    egui::Align2::CENTER_CENTER,
                    ">",
                    egui::FontId::proportional(12.0),
                    Color32::GRAY,
                );
                match after {
                    Some((atex, ap)) => crop(ui, a, atex, ap, face.bbox),
                    None => {
                        ui.painter().rect_filled(a, 2.0, Color32::from_gray(30));
                    }
                }
                ui.painter().text(
                    b.left_top() + vec2(2.0, 1.0),
                    egui::Align2::LEFT_TOP,
                    format!("{}", i + 1),
                    egui::FontId::proportional(11.0),
                    Color32::WHITE,
                );
                ui.add_space(6.0);
            }
        });
    });
}

/// Face `i`'s identity under model B: B restored the faces left on, in order.
fn b_face_identity(row: &Row, b: &crate::gui::compare_job::CompareResult, i: usize) -> Option<crate::identity::FaceIdentity> {
    if row.faces_off.contains(&i) {
        return None;
    }
    let k = (0..i).filter(|j| !row.faces_off.contains(j)).count();
    b.identity.get(k).copied().flatten()
}

/// Model B: which file, *A | B* to show it, and *Restore with B* for the selected photo.
fn model_b_bar(ui: &mut Ui, view: &mut CompareView, row: &Row, editable: bool, settings: &FaceSettings, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let pick = ui
            .add_enabled(editable, egui::Button::new("Model B…"))
            .on_hover_text("Choose a second GPEN generator to compare with the run's (for example GPEN-BFR-1024 against GPEN-BFR-512)");
        if pick.clicked() {
            actions.push(Action::PickCompareWeights);
        }
        let Some(b) = &settings.model_b else {
            ui.label(RichText::new("no model B").small().weak());
            return;
        };
        let name = b.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        ui.label(RichText::new(format!("B: {name}")).small()).on_hover_text(b.display().to_string());
        ui.checkbox(&mut view.ab_mode, "A | B").on_hover_text("The run's result beside model B's, instead of before | after");
        if row.b_running {
            ui.label(RichText::new("restoring with B…").small());
        } else if row.status == PhotoStatus::Done {
            let label = if matches!(row.b, Some(Ok(_))) { "Restore with B again" } else { "Restore with B" };
            let button = ui.add_enabled(editable, egui::Button::new(label)).on_hover_text(
                "Restore this photo with model B, the same faces at the same strengths (into compare-<B>/ in the output folder)",
            );
            if button.clicked() {
                view.ab_mode = true;
                actions.push(Action::CompareB(row.key));
            }
        }
        if let Some(Err(e)) = &row.b {
            ui.colored_label(BELOW_FLOOR, RichText::new(crate::gui::state::displayable(&e.to_string())).small());
        }
    });
}

/// The face's own strength, or the run's: dragging gives it its own, "run's" takes it back.
fn face_strength(ui: &mut Ui, row: &Row, i: usize, editable: bool, run_strength: f32, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let own = row.face_strength.get(&i).copied();
        let mut value = own.unwrap_or(run_strength);
        let drag = ui
            .add_enabled(editable, egui::DragValue::new(&mut value).range(0.0..=1.0).speed(0.01).fixed_decimals(2).prefix("strength "))
            .on_hover_text("This face's strength (1 = fully restored, 0 = the original), instead of the run's");
        if drag.changed() {
            actions.push(Action::FaceStrength(row.key, i, Some(value)));
        }
        if own.is_some()
            && ui.add_enabled(editable, egui::Button::new("run's").small()).on_hover_text("Use the run's strength again").clicked()
        {
            actions.push(Action::FaceStrength(row.key, i, None));
        }
    });
}

/// Paints the square around a face box (with a margin) from a preview texture.
fn crop(ui: &Ui, dest: Rect, tex: &TextureHandle, preview: &Preview, bbox: [f32; 4]) {
    let (w, h) = (preview.image.width() as f32, preview.image.height() as f32);
    let [x1, y1, x2, y2] = bbox.map(|v| v * preview.scale);
    let side = (x2 - x1).max(y2 - y1) * 1.3;
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let uv = Rect::from_min_max(pos2((cx - side / 2.0) / w, (cy - side / 2.0) / h), pos2((cx + side / 2.0) / w, (cy + side / 2.0) / h));
    ui.painter().image(tex.id(), dest, uv, Color32::WHITE);
}
