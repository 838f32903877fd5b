//! One function per panel; each takes the `Ui` and the part of the state it draws, and pushes
//! [`super::state::Action`]s for anything that must happen outside drawing.

pub mod compare;
pub mod controls;
pub mod face_tool;
pub mod memory;
pub mod queue;
pub mod settings;
