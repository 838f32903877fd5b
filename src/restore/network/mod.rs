//! The GPEN network in tch. One file per building block; the folder mirrors GPEN's module tree.

pub mod config;
pub mod equalized;
pub mod full_generator;
pub mod generator;
pub mod ops;
pub mod styled;

pub use config::GpenConfig;
pub use full_generator::FullGenerator;
