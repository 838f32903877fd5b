//! Photo input and output: the first and last steps of a photo's path (read -> ... -> write).
//!
//! [`read_photo`] turns any real-world JPEG, PNG, WebP, TIFF, BMP or GIF into upright 8-bit RGB
//! plus the metadata worth keeping (JPEG through libjpeg-turbo, as OpenCV decodes it: [`jpeg`]); [`write_photo`] writes a result atomically with that metadata.
//! Neither panics on hostile input: a bad file is a [`PhotoError`] a user can act on.

mod chunks;
pub mod density;
pub mod error;
mod exif_edit;
#[cfg(feature = "heif")]
mod heif;
pub mod jpeg;
pub mod read;
mod tiff;
pub mod write;
pub mod xmp;

pub use density::Density;
pub use error::PhotoError;
pub use read::{Photo, ReadLimits, SourceFormat, read_photo};
pub use write::{Gray16Image, OutputFormat, PhotoMeta, Rgb16Image, TiffCompression, write_photo, write_photo16};
pub use xmp::HistoryEntry;
