//! Errors from reading and writing photos, worded for the person who chose the file.

use std::path::{Path, PathBuf};

use image::ImageFormat;

/// Why a photo could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("{}: file not found", .path.display())]
    NotFound { path: PathBuf },
    #[error("{}: permission denied (check that you may read this file)", .path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: is a folder, not a photo", .path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: could not read the file: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: the file is empty (0 bytes)", .path.display())]
    Empty { path: PathBuf },
    #[error("{}: not an image, or not a format gpen-studio reads (JPEG, PNG, WebP, TIFF, BMP, GIF, HEIC, AVIF)", .path.display())]
    NotAnImage { path: PathBuf },
    #[error("{}: {format} images are not supported; convert it to PNG or JPEG first", .path.display())]
    UnsupportedFormat { path: PathBuf, format: String },
    #[error(
        "{}: this {format} image uses a variant gpen-studio cannot decode ({detail}); convert it to PNG or JPEG first",
        .path.display()
    )]
    UnsupportedVariant { path: PathBuf, format: &'static str, detail: String },
    #[error("{}: the {format} data is truncated or corrupt ({detail})", .path.display())]
    Corrupt { path: PathBuf, format: &'static str, detail: String },
    #[error(
        "{}: image is {width}x{height} = {:.1} megapixels, above the limit of {:.1} megapixels; \
         raise the limit (--max-megapixels, ReadLimits::max_pixels) if you trust this file",
        .path.display(), megapixels(*width as u64 * *height as u64), megapixels(*limit)
    )]
    TooLarge { path: PathBuf, width: u32, height: u32, limit: u64 },
    #[error(
        "{}: decoding this image needs {} MiB, above the limit of {} MiB; \
         raise ReadLimits::max_alloc_bytes if you trust this file",
        .path.display(), .needed >> 20, .limit >> 20
    )]
    TooMuchMemory { path: PathBuf, needed: u64, limit: u64 },
    #[error("{}: could not write the photo: {detail}", .path.display())]
    Write { path: PathBuf, detail: String },
}

fn megapixels(pixels: u64) -> f64 {
    pixels as f64 / 1e6
}

impl PhotoError {
    /// Maps an error from opening or inspecting `path` to the variant a user recognises.
    pub(crate) fn from_io(path: &Path, source: std::io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            std::io::ErrorKind::NotFound => PhotoError::NotFound { path },
            std::io::ErrorKind::PermissionDenied => PhotoError::PermissionDenied { path },
            std::io::ErrorKind::IsADirectory => PhotoError::NotAFile { path },
            _ => PhotoError::Io { path, source },
        }
    }

    /// Maps a decoder's error. A stream that ends early surfaces as an I/O error from the decoder,
    /// but for the user it is a truncated file, not a disk problem.
    pub(crate) fn from_decode(path: &Path, format: ImageFormat, err: image::ImageError) -> Self {
        use image::ImageError as E;
        let path = path.to_path_buf();
        let format = format_name(format);
        match err {
            E::Unsupported(e) => PhotoError::UnsupportedVariant { path, format, detail: e.to_string() },
            E::Limits(e) => PhotoError::Corrupt { path, format, detail: format!("decoder refused it: {e}") },
            E::IoError(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => PhotoError::Io { path, source: e },
            E::IoError(_) => PhotoError::Corrupt { path, format, detail: "the file ends early".into() },
            // Some decoder messages end in a newline; the error stays one line.
            other => PhotoError::Corrupt { path, format, detail: other.to_string().trim().replace('\n', " ") },
        }
    }
}

/// The name users know a format by.
pub fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Avif => "AVIF",
        _ => "image",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_message_states_size_limit_and_remedy() {
        let err = PhotoError::TooLarge { path: "big.png".into(), width: 60000, height: 60000, limit: 100_000_000 };
        let msg = err.to_string();
        assert!(msg.contains("60000x60000"), "{msg}");
        assert!(msg.contains("3600.0 megapixels"), "{msg}");
        assert!(msg.contains("100.0 megapixels"), "{msg}");
        assert!(msg.contains("max_pixels"), "{msg}");
    }

    #[test]
    fn io_errors_map_to_user_variants() {
        let p = Path::new("x.jpg");
        let nf = PhotoError::from_io(p, std::io::ErrorKind::NotFound.into());
        assert!(matches!(nf, PhotoError::NotFound { .. }));
        let pd = PhotoError::from_io(p, std::io::ErrorKind::PermissionDenied.into());
        assert!(matches!(pd, PhotoError::PermissionDenied { .. }));
    }
}
