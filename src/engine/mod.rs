//! The adaptive memory engine: what the device has free ([`memory`]), what GPEN needs for a batch
//! ([`memory_model`]), and the batch size that fits between the two ([`planner`]).

pub mod adaptive;
pub mod memory;
pub mod memory_model;
pub mod planner;
pub mod worker;
