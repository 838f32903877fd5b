//! The face tool's window: the aligned face (brush over it to mark what inpainting fills in), the
//! result beside it, and where it was saved.

use crate::gui::face_tool::{FaceTool, ToolStatus};
use crate::gui::state::Action;
use crate::gui::textures::{Slot, Textures};
use crate::weights::Task;
use egui::{Color32, RichText, Sense, Ui, vec2};

/// Side of the face and result views.
const VIEW_SIDE: f32 = 320.0;

/// `download`: the text of the download in progress and the name it downloads. `run_going`: the
/// queue's run holds the device, and the tool waits for it.
pub fn face_tool_window(
    ctx: &egui::Context,
    tool: &mut FaceTool,
    download: Option<(String, String)>,
    run_going: bool,
    textures: &mut Textures,
    actions: &mut Vec<Action>,
) {
    let verb = if tool.task == Task::Inpaint { "Inpaint" } else { "Colorize" };
    let photo = tool.photo.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut open = true;
    egui::Window::new(format!("{verb} face {} of {photo}", tool.face_index + 1))
        .id(egui::Id::unique("face-tool"))
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| body(ui, tool, download, run_going, textures, actions, verb));
    if !open {
        actions.push(Action::CloseFaceTool);
    }
}

fn body(
    ui: &mut Ui,
    tool: &mut FaceTool,
    download: Option<(String, String)>,
    run_going: bool,
    textures: &mut Textures,
    actions: &mut Vec<Action>,
    verb: &str,
) {
    if tool.status == ToolStatus::NeedsModel {
        ui.label(format!("{} is not installed; the face tool needs GPEN's {} checkpoint.", tool.model_name, tool.task));
        match download {
            Some((name, text)) if name == tool.model_name => {
                ui.label(text);
            }
            Some(_) => {
                ui.label("another download is running");
            }
            None => {
                if ui.button(format!("Download {}", tool.model_name)).clicked() {
                    actions.push(Action::DownloadAddon(tool.model_name.clone()));
                }
            }
        }
        return;
    }
    let ctx = ui.ctx().clone();
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label(if tool.task == Task::Inpaint { "Brush over what to fill in" } else { "The face as GPEN sees it" });
            match tool.display.clone() {
                Some(display) => {
                    let tex = textures.get(&ctx, tool.key, Slot::FaceTool, tool.revision, &display);
                    let (rect, response) = ui.allocate_exact_size(vec2(VIEW_SIDE, VIEW_SIDE), Sense::drag());
                    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "Face to brush"));
                    ui.painter().image(tex.id(), rect, egui::Rect::from_min_max(egui::Pos2::ZERO, egui::pos2(1.0, 1.0)), Color32::WHITE);
                    if tool.task == Task::Inpaint && !matches!(tool.status, ToolStatus::Running) {
                        brush(tool, &response, rect, display.width() as f32);
                    }
                }
                None => {
                    ui.allocate_ui(vec2(VIEW_SIDE, VIEW_SIDE), |ui| {
                        ui.spinner();
                        ui.label("aligning the face…");
                    });
                }
            }
        });
        ui.vertical(|ui| {
            ui.label("Result");
            match &tool.result {
                Some((_, pixels)) => {
                    let tex = textures.get(&ctx, tool.key, Slot::FaceResult, tool.revision, pixels);
                    ui.add(egui::Image::new(&tex).fit_to_exact_size(vec2(VIEW_SIDE, VIEW_SIDE)));
                }
                None => {
                    let (rect, _) = ui.allocate_exact_size(vec2(VIEW_SIDE, VIEW_SIDE), Sense::hover());
                    ui.painter().rect_filled(rect, 2.0, Color32::from_gray(30));
                }
            }
        });
    });
    if tool.task == Task::Inpaint {
        ui.horizontal(|ui| {
            let max = tool.crop.as_ref().map_or(64.0, |c| c.width() as f32 / 8.0);
            ui.add(egui::Slider::new(&mut tool.brush_radius, 1.0..=max).text("Brush radius (face pixels)"));
            if ui.button("Clear").clicked() {
                tool.clear_mask();
            }
            ui.label(format!("{:.1} % of the face marked", 100.0 * tool.masked_share()));
        });
    }
    ui.horizontal(|ui| {
        let again = matches!(tool.status, ToolStatus::Done | ToolStatus::Failed(_));
        let label = if again && tool.task == Task::Colorize { format!("{verb} again") } else { verb.to_string() };
        if ui.add_enabled(tool.can_run() && !run_going, egui::Button::new(label)).clicked() {
            actions.push(Action::RunFaceTool);
        }
        if run_going && tool.can_run() {
            ui.label(RichText::new("waits for the run to end (one run on the device at a time)").small());
        }
        if tool.status == ToolStatus::Running {
            ui.spinner();
            ui.label(format!("running {}…", tool.model_name));
        }
    });
    match &tool.status {
        ToolStatus::Failed(e) => {
            ui.colored_label(Color32::from_rgb(240, 90, 80), format!("Failed: {e}"));
        }
        ToolStatus::Done => {
            if let Some((path, _)) = &tool.result {
                ui.label(RichText::new(format!("Saved to {}", path.display())).small());
            }
        }
        _ => {}
    }
}

/// While the button is down on the face, strokes run from where the pointer was a frame before (a
/// click paints a dot).
fn brush(tool: &mut FaceTool, response: &egui::Response, rect: egui::Rect, side: f32) {
    let to_crop = |p: egui::Pos2| [(p.x - rect.left()) / rect.width() * side, (p.y - rect.top()) / rect.height() * side];
    match response.interact_pointer_pos().filter(|_| response.is_pointer_button_down_on()) {
        Some(pos) => {
            let at = to_crop(pos);
            let from = tool.stroke_from.unwrap_or(at);
            tool.paint(from, at);
            tool.stroke_from = Some(at);
        }
        None => tool.stroke_from = None,
    }
}
