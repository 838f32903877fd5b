//! gpen-studio: restore faces in old photos with GPEN through libtorch.
//!
//! The path of a photo: read ([`photo`]) -> [`detect`] -> [`align`] -> restore ([`gpen`], [`model`])
//! -> [`paste`] (its mask from the face parser, [`parse`]; the background optionally upscaled by
//! [`sr`]) -> write ([`photo`]), with [`imgproc`] reproducing OpenCV's resampling, [`checkpoint`]
//! loading the official weights, [`models`] fetching and verifying them, [`cli`] the headless
//! commands, [`gui`] the desktop window on top of the [`engine`].

pub mod align;
pub mod archive;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod detect;
pub mod device;
pub mod engine;
pub mod error;
pub mod gpen;
pub mod gui;
pub mod imgproc;
pub mod inputs;
pub mod memory;
pub mod model;
pub mod models;
pub mod parse;
pub mod paste;
pub mod paths;
pub mod photo;
pub mod pipeline;
pub mod restorer;
pub mod sr;
