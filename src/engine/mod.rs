//! The adaptive memory engine: what the device has free ([`memory`]), what GPEN needs for a batch
//! ([`memory_model`]), the batch size that fits between the two ([`planner`]), and the worker
//! thread that runs the staged pipeline with them ([`worker`], one run in [`run`]), and the one
//! driver of a whole run for the commands ([`driver`]).

pub mod adaptive;
pub mod admission;
pub mod driver;
pub mod memory;
pub mod memory_model;
pub mod plan;
pub mod planner;
mod run;
pub mod worker;
