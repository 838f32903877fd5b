//! Large archives: which photos a run takes (folder walks, manifests, shards), where each one's
//! result goes (a pure function of its path under the folder it was found in), and the run report.
//!
//! Everything here is decided from the photo's path alone, never from the order of the inputs or
//! from what else is in the run, so a rerun, a shard or another machine maps a photo to the same
//! output and the same shard.

pub mod inputs;
pub mod manifest;
pub mod report;
pub mod shard;
pub mod sheet;
pub mod walk;

pub use shard::Shard;
pub use walk::{Photo, Source, Walk};
