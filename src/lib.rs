//! gpen-studio: restore faces in old photos with GPEN through libtorch.
//!
//! One folder per role on a photo's path: read ([`photo`]) → [`detect`] → [`align`] → [`restore`]
//! (the GPEN generator) → paste ([`pipeline::paste`], through the [`mask`] of each face) → write
//! ([`photo`]), the background optionally upscaled by [`upscale`], each face's likeness measured by
//! [`identity`]. Beside them: the [`engine`] (memory,
//! batch sizing, the worker) running the [`pipeline`]'s stages, [`archive`] (walks, output names,
//! shards, reports), [`weights`] (the catalogue, the store), [`checkpoint`] (reading network files, beneath the roles), [`imgproc`]
//! (OpenCV's resampling), [`sys`] (every FFI call), [`config`] (the one run configuration), and on top
//! [`cli`] (the headless commands) and [`gui`] (the desktop window).

pub mod align;
pub mod archive;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod detect;
pub mod device;
pub mod engine;
pub mod error;
pub mod gui;
pub mod identity;
pub mod imgproc;
pub mod mask;
pub mod oom;
pub mod paths;
pub mod photo;
pub mod pipeline;
pub mod restore;
pub mod sys;
pub mod tensor_ops;
pub mod upscale;
pub mod weights;
