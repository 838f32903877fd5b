//! gpen-studio: restore faces in old photos with GPEN through libtorch.
//!
//! The path of a photo: read -> detect -> align -> restore ([`gpen`], [`model`]) -> paste -> write,
//! with [`photo`] reading and writing the files, [`checkpoint`] loading the official weights and
//! [`cli`] the headless commands.

pub mod checkpoint;
pub mod cli;
pub mod device;
pub mod error;
pub mod gpen;
pub mod memory;
pub mod model;
pub mod paths;
pub mod photo;
