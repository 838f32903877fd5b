//! Reading a photo from disk into upright 8-bit RGB, whatever the file turns out to be.
//!
//! The format comes from the content, not the extension (phones and chat apps mislabel files).
//! The size is checked from the header before any pixel buffer exists, so a decompression bomb
//! costs nothing. EXIF orientation is applied to the pixels and reset to 1 in the kept EXIF.

use std::fs::File;
use std::io::BufReader;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use super::error::{PhotoError, format_name};

/// Formats `read_photo` decodes; anything else recognised is refused by name.
const READABLE: [ImageFormat; 6] =
    [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Tiff, ImageFormat::Bmp, ImageFormat::Gif];

/// Bounds on what a single photo may cost to decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest accepted width × height. Default 100 megapixels (a 108 MP phone sensor is the
    /// biggest common camera; scans beyond that should be split).
    pub max_pixels: u64,
    /// Largest memory the decoder's buffer plus the RGB copy may take. Default 2 GiB: enough
    /// for a 100 MP photo in any pixel format the supported decoders produce.
    pub max_alloc_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits { max_pixels: 100_000_000, max_alloc_bytes: 2 << 30 }
    }
}

/// What a photo's content turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// A format the image crate names (JPEG pixels still come from libjpeg-turbo).
    Image(ImageFormat),
    /// An HEIF container (HEIC, AVIF), read through libheif.
    Heif,
}

impl PartialEq<ImageFormat> for SourceFormat {
    fn eq(&self, other: &ImageFormat) -> bool {
        *self == SourceFormat::Image(*other)
    }
}

/// A decoded photo, upright, with the metadata worth carrying to the output.
#[derive(Clone, Debug)]
pub struct Photo {
    /// Upright pixels: EXIF orientation already applied.
    pub pixels: RgbImage,
    /// The embedded ICC colour profile. Pixels are left in that space (no colour management), so
    /// writing the profile back keeps the photo's appearance.
    pub icc: Option<Vec<u8>>,
    /// The raw EXIF block (TIFF structure, no `Exif\0\0` prefix) with orientation reset to 1.
    pub exif: Option<Vec<u8>>,
    /// What the content turned out to be, whatever the file is named.
    pub source_format: SourceFormat,
    /// The file's pixel format carried an alpha channel (GIF frames always do). The pixels are
    /// the colour channels as they are, not composited, like PIL's `convert('RGB')` that the face
    /// detector's reference uses, so detection sees the same pixels here as there.
    pub had_alpha: bool,
    /// The alpha channel, upright, when it is not opaque everywhere: written back into outputs
    /// that can hold it (PNG, WebP, TIFF).
    pub alpha: Option<GrayImage>,
    /// The resolution the file records.
    pub density: Option<super::Density>,
    /// The XMP packet (captions, people tags, keywords), as the file holds it.
    pub xmp: Option<Vec<u8>>,
    /// A 16-bit photo's own samples (`pixels` holds them rounded to 8 bits).
    pub deep: Option<Deep>,
    /// Width and height as read (upright), which `pixels` may leave (upscaled) on the way.
    pub read_size: (u32, u32),
}

impl Photo {
    /// The metadata to hand to [`super::write_photo`] for a result the size of the photo as read.
    pub fn meta(&self) -> super::PhotoMeta {
        self.meta_for(self.read_size.0, self.read_size.1)
    }

    /// The metadata for a result of `width` × `height` (an upscaled photo): the alpha channel
    /// resized to it (bilinear), the density scaled with it, so the print keeps its size.
    pub fn meta_for(&self, width: u32, height: u32) -> super::PhotoMeta {
        let alpha = self.alpha.as_ref().map(|a| {
            if a.dimensions() == (width, height) {
                a.clone()
            } else {
                image::imageops::resize(a, width, height, image::imageops::FilterType::Triangle)
            }
        });
        let factor = width as f64 / self.read_size.0.max(1) as f64;
        super::PhotoMeta {
            icc: self.icc.clone(),
            exif: self.exif.clone(),
            density: self.density.map(|d| d.scaled(factor)),
            alpha,
            xmp: self.xmp.clone(),
            history: None,
        }
    }
}

/// A 16-bit photo's own samples, upright (PNG, TIFF): results that hold 16 bits are composited
/// from these, so what the run does not touch stays as it was, bit for bit.
#[derive(Clone, Debug)]
pub struct Deep {
    pub rgb: super::Rgb16Image,
    /// Its transparency, when not opaque everywhere.
    pub alpha: Option<super::Gray16Image>,
}

/// Reads the photo at `path`. Never panics: every failure, including a panicking decoder, is a
/// [`PhotoError`] that names the file and says what is wrong with it.
pub fn read_photo(path: &Path, limits: &ReadLimits) -> Result<Photo, PhotoError> {
    let meta = std::fs::metadata(path).map_err(|e| PhotoError::from_io(path, e))?;
    if meta.is_dir() {
        return Err(PhotoError::NotAFile { path: path.into() });
    }
    if meta.len() == 0 {
        return Err(PhotoError::Empty { path: path.into() });
    }
    // HEIF containers (HEIC, AVIF) go to libheif; the image crate knows the rest.
    let mut head = Vec::with_capacity(12);
    let file = File::open(path).map_err(|e| PhotoError::from_io(path, e))?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, 12), &mut head).map_err(|e| PhotoError::from_io(path, e))?;
    if is_heif(&head) {
        return read_heif(path, limits);
    }
    let file = File::open(path).map_err(|e| PhotoError::from_io(path, e))?;
    let reader = ImageReader::new(BufReader::new(file)).with_guessed_format().map_err(|e| PhotoError::from_io(path, e))?;
    let format = reader.format().ok_or_else(|| PhotoError::NotAnImage { path: path.into() })?;
    if !READABLE.contains(&format) {
        let format = format!("{format:?}").to_uppercase();
        return Err(PhotoError::UnsupportedFormat { path: path.into(), format });
    }
    guarded(path, format, || decode(path, format, reader, limits))?
}

fn decode(path: &Path, format: ImageFormat, mut reader: ImageReader<BufReader<File>>, limits: &ReadLimits) -> Result<Photo, PhotoError> {
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(decoder_limits);
    // Constructing the decoder parses only the header: cheap even for a bomb.
    let mut decoder = reader.into_decoder().map_err(|e| PhotoError::from_decode(path, format, e))?;

    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(PhotoError::TooLarge { path: path.into(), width, height, limit: limits.max_pixels });
    }
    let color = decoder.color_type();
    let rgb_copy = if color == image::ColorType::Rgb8 { 0 } else { pixels * 3 };
    // A 16-bit photo also keeps its own samples (and 16-bit alpha).
    let sixteen = color.bytes_per_pixel() / color.channel_count() == 2;
    let deep_copy = if sixteen { pixels * 8 } else { 0 };
    let needed = decoder.total_bytes().saturating_add(rgb_copy).saturating_add(deep_copy);
    if needed > limits.max_alloc_bytes {
        return Err(PhotoError::TooMuchMemory { path: path.into(), needed, limit: limits.max_alloc_bytes });
    }

    // Broken metadata must not cost the user the photo: treat it as absent.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut exif = decoder.exif_metadata().ok().flatten();
    let xmp = decoder.xmp_metadata().ok().flatten().filter(|x| !x.is_empty());
    if let Some(exif) = exif.as_mut() {
        let _ = Orientation::remove_from_exif_chunk(exif);
    }

    // JPEG as the authors' OpenCV decodes it; what libjpeg-turbo does not decode (CMYK, damaged
    // data) is decoded as before, by the image crate's decoder, which accepts more.
    let turbo = (format == ImageFormat::Jpeg).then(|| std::fs::read(path).ok()).flatten().and_then(|d| super::jpeg::decode_rgb(&d).ok());
    let image = match turbo {
        Some(rgb) => DynamicImage::ImageRgb8(rgb),
        None => DynamicImage::from_decoder(decoder).map_err(|e| PhotoError::from_decode(path, format, e))?,
    };
    // 16-bit samples are rounded to 8 bits (65535 -> 255, 32896 -> 128); alpha goes its own way.
    let alpha = if color.has_alpha() { transparency(&image) } else { None };
    let deep = sixteen.then(|| deep_samples(&image, orientation));
    let mut upright = DynamicImage::ImageRgb8(image.into_rgb8());
    upright.apply_orientation(orientation);
    let alpha = alpha.map(|a| {
        let mut a = DynamicImage::ImageLuma8(a);
        a.apply_orientation(orientation);
        a.into_luma8()
    });
    let pixels = upright.into_rgb8();
    let read_size = pixels.dimensions();
    let density = super::density::read_density(path, format);
    Ok(Photo {
        pixels,
        icc,
        exif,
        source_format: SourceFormat::Image(format),
        had_alpha: color.has_alpha(),
        alpha,
        density,
        xmp,
        deep,
        read_size,
    })
}

/// The 16-bit samples of `image`, turned upright like the 8-bit pixels.
fn deep_samples(image: &DynamicImage, orientation: Orientation) -> Deep {
    let mut rgb = DynamicImage::ImageRgb16(image.to_rgb16());
    rgb.apply_orientation(orientation);
    let alpha = image.color().has_alpha().then(|| image.to_rgba16()).and_then(|rgba| {
        let alpha = super::Gray16Image::from_fn(rgba.width(), rgba.height(), |x, y| image::Luma([rgba.get_pixel(x, y)[3]]));
        alpha.as_raw().iter().any(|&a| a < u16::MAX).then_some(alpha)
    });
    let alpha = alpha.map(|a| {
        let mut a = DynamicImage::ImageLuma16(a);
        a.apply_orientation(orientation);
        a.into_luma16()
    });
    Deep { rgb: rgb.into_rgb16(), alpha }
}

/// The alpha channel (8 bits), unless every pixel is opaque (then there is nothing to keep).
fn transparency(image: &DynamicImage) -> Option<GrayImage> {
    let rgba = image.to_rgba8();
    let alpha = GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| image::Luma([rgba.get_pixel(x, y)[3]]));
    alpha.as_raw().iter().any(|&a| a < 255).then_some(alpha)
}

/// Whether `head` (a file's first bytes) opens an HEIF container: an ISO-BMFF `ftyp` box naming
/// one of HEIF's brands (HEIC, AVIF, the generic image brands).
pub fn is_heif(head: &[u8]) -> bool {
    const BRANDS: [&[u8; 4]; 10] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"];
    head.get(4..8) == Some(b"ftyp") && head.get(8..12).is_some_and(|brand| BRANDS.iter().any(|b| &b[..] == brand))
}

#[cfg(feature = "heif")]
fn read_heif(path: &Path, limits: &ReadLimits) -> Result<Photo, PhotoError> {
    let d = guarded(path, ImageFormat::Avif, || super::heif::decode(path, limits))??;
    let read_size = d.pixels.dimensions();
    Ok(Photo {
        pixels: d.pixels,
        icc: d.icc,
        exif: d.exif,
        source_format: SourceFormat::Heif,
        had_alpha: d.alpha.is_some(),
        alpha: d.alpha,
        density: None,
        xmp: d.xmp,
        deep: None,
        read_size,
    })
}

#[cfg(not(feature = "heif"))]
fn read_heif(path: &Path, _: &ReadLimits) -> Result<Photo, PhotoError> {
    Err(PhotoError::UnsupportedFormat { path: path.into(), format: "HEIF (HEIC, AVIF: this build has no libheif)".into() })
}

/// Runs decoder code so that a panic inside a codec becomes a `Corrupt` error, not a crash.
fn guarded<T>(path: &Path, format: ImageFormat, f: impl FnOnce() -> T) -> Result<T, PhotoError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the decoder crashed".into());
        PhotoError::Corrupt { path: path.into(), format: format_name(format), detail: format!("decoder panicked: {detail}") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_decoder_becomes_a_corrupt_error() {
        let err = guarded(Path::new("x.tif"), ImageFormat::Tiff, || -> u8 { panic!("index out of bounds") }).unwrap_err();
        assert!(matches!(err, PhotoError::Corrupt { format: "TIFF", .. }), "{err:?}");
        assert!(err.to_string().contains("decoder panicked: index out of bounds"), "{err}");
        assert_eq!(guarded(Path::new("x.tif"), ImageFormat::Tiff, || 7).unwrap(), 7);
    }

    #[test]
    fn default_limits_allow_a_100_megapixel_photo_in_any_decoded_layout() {
        let limits = ReadLimits::default();
        assert_eq!(limits.max_pixels, 100_000_000);
        // RGBA, 32-bit float (TIFF) is the widest layout: 16 bytes a pixel, plus the RGB copy.
        assert!(limits.max_pixels * (16 + 3) <= limits.max_alloc_bytes);
    }
}
