//! Image operations that reproduce OpenCV's arithmetic, where GPEN's Python pipeline calls OpenCV
//! and the exact bits matter (the golden README, "pipeline/": a float bilinear instead of OpenCV's
//! fixed-point 8-bit resize changes the SR-mode crops).

mod colour;
mod resize;

pub use colour::{grey, keep_luminance};

pub use resize::{resize_linear_f32, resize_linear_rgb, resize_linear_u8};
