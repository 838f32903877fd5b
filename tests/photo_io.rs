//! Photo input/output: real-world photos read upright as RGB, hostile files refused with a clear
//! error (never a panic), results written atomically with their ICC profile and EXIF.
//!
//! Every input is generated here (no downloads), except the two shared test photos.

mod common;
use common::corpus::*;
use std::path::{Path, PathBuf};

use gpen_studio::photo::{OutputFormat, PhotoError, PhotoMeta, ReadLimits, read_photo, write_photo};
use image::metadata::Orientation;
use image::{DynamicImage, ImageBuffer, ImageEncoder, ImageFormat, Luma, LumaA, Rgb, RgbImage, Rgba};

// ---------------------------------------------------------------- corpus helpers

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

/// 64×32 upright pattern: red top-left, green top-right, blue bottom-left, white bottom-right.
/// Wide, so a missed 90° turn shows in the dimensions too; blocks of 32×16 survive JPEG.
fn quadrants() -> RgbImage {
    RgbImage::from_fn(64, 32, |x, y| {
        Rgb(match (x < 32, y < 16) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => WHITE,
        })
    })
}

/// Asserts the four quadrant centres of `img` have the upright pattern's colours (± `tol`).
fn assert_upright(img: &RgbImage, tol: u8, what: &str) {
    assert_eq!(img.dimensions(), (64, 32), "{what}: dimensions");
    for (x, y, want, corner) in
        [(16, 8, RED, "top-left"), (48, 8, GREEN, "top-right"), (16, 24, BLUE, "bottom-left"), (48, 24, WHITE, "bottom-right")]
    {
        assert_close(img.get_pixel(x, y).0, want, tol, &format!("{what}: {corner}"));
    }
}

fn assert_close(got: [u8; 3], want: [u8; 3], tol: u8, what: &str) {
    let ok = got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= tol);
    assert!(ok, "{what}: got {got:?}, want {want:?} ± {tol}");
}

// Encoders, EXIF and PNG builders live in tests/common/corpus.rs (shared with reliability.rs).

struct Corpus(tempfile::TempDir);

impl Corpus {
    fn new() -> Self {
        Corpus(tempfile::tempdir().unwrap())
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn read(path: &Path) -> Result<gpen_studio::photo::Photo, PhotoError> {
    read_photo(path, &ReadLimits::default())
}

/// Every supported format decodes, chosen by content.
mod photo_formats {
    use super::*;

    #[test]
    fn lossless_formats_round_trip_exactly() {
        let c = Corpus::new();
        let img = DynamicImage::ImageRgb8(quadrants());
        for (format, name) in [
            (ImageFormat::Png, "q.png"),
            (ImageFormat::WebP, "q.webp"),
            (ImageFormat::Tiff, "q.tiff"),
            (ImageFormat::Bmp, "q.bmp"),
            (ImageFormat::Gif, "q.gif"), // four colours fit the palette exactly
        ] {
            let photo = read(&c.file(name, &encode(&img, format))).unwrap();
            assert_eq!(photo.source_format, format, "{name}");
            assert_eq!(photo.pixels, quadrants(), "{name}: pixels unchanged");
            assert_eq!(photo.had_alpha, format == ImageFormat::Gif, "{name}: GIF frames decode as RGBA");
        }
    }

    #[test]
    fn jpeg_reads_close_to_the_original() {
        let c = Corpus::new();
        let photo = read(&c.file("q.jpg", &jpeg(&quadrants()))).unwrap();
        assert_eq!(photo.source_format, ImageFormat::Jpeg);
        assert!(!photo.had_alpha);
        assert!(photo.exif.is_none() && photo.icc.is_none());
        assert_upright(&photo.pixels, 12, "jpeg");
    }

    #[test]
    fn format_comes_from_content_not_extension() {
        let c = Corpus::new();
        let png = encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Png);
        for name in ["really_a_png.jpg", "no_extension", "UPPER.WEBP"] {
            let photo = read(&c.file(name, &png)).unwrap();
            assert_eq!(photo.source_format, ImageFormat::Png, "{name}");
            assert_eq!(photo.pixels, quadrants());
        }
        let photo = read(&c.file("really_a_jpeg.png", &jpeg(&quadrants()))).unwrap();
        assert_eq!(photo.source_format, ImageFormat::Jpeg);
    }

    #[test]
    fn animated_gif_reads_its_first_frame() {
        use image::codecs::gif::GifEncoder;
        let c = Corpus::new();
        let frame = |rgb: [u8; 3]| image::Frame::new(image::RgbaImage::from_pixel(8, 8, Rgba([rgb[0], rgb[1], rgb[2], 255])));
        let mut bytes = Vec::new();
        GifEncoder::new(&mut bytes).encode_frames([frame(RED), frame(BLUE), frame(GREEN)]).unwrap();
        let photo = read(&c.file("anim.gif", &bytes)).unwrap();
        assert_eq!(photo.source_format, ImageFormat::Gif);
        assert_eq!(photo.pixels.dimensions(), (8, 8));
        assert!(photo.pixels.pixels().all(|p| p.0 == RED), "first frame, not a later one");
    }

    #[test]
    fn one_pixel_images_read() {
        let c = Corpus::new();
        let px = RgbImage::from_pixel(1, 1, Rgb([10, 200, 30]));
        let png = read(&c.file("1.png", &encode(&DynamicImage::ImageRgb8(px.clone()), ImageFormat::Png))).unwrap();
        assert_eq!(png.pixels, px);
        let jpg = read(&c.file("1.jpg", &jpeg(&px))).unwrap();
        assert_eq!(jpg.pixels.dimensions(), (1, 1));
        assert_close(jpg.pixels.get_pixel(0, 0).0, [10, 200, 30], 12, "1x1 jpeg");
    }
}

/// EXIF orientation is applied once and then reset.
mod photo_orientation {
    use super::*;

    #[test]
    fn every_exif_orientation_reads_upright() {
        let c = Corpus::new();
        for orientation in 1..=8u16 {
            let big_endian = orientation % 2 == 0; // cameras write both byte orders
            let exif = exif_block(orientation, big_endian);
            let bytes = with_exif_app1(&jpeg(&stored_for(orientation, &quadrants())), &exif);
            let photo = read(&c.file(&format!("o{orientation}.jpg"), &bytes)).unwrap();
            assert_upright(&photo.pixels, 12, &format!("orientation {orientation}"));

            // The kept EXIF says "already upright" and is otherwise untouched.
            let kept = photo.exif.expect("EXIF kept");
            assert_eq!(Orientation::from_exif_chunk(&kept), Some(Orientation::NoTransforms), "orientation {orientation}");
            assert_eq!(kept, exif_block(1, big_endian), "orientation {orientation}: only the tag changed");
        }
    }

    #[test]
    fn png_and_webp_exif_orientation_is_applied_too() {
        use image::codecs::{png::PngEncoder, webp::WebPEncoder};
        let c = Corpus::new();
        let stored = stored_for(6, &quadrants());
        let (w, h) = stored.dimensions();
        let mut png = Vec::new();
        let mut enc = PngEncoder::new(&mut png);
        enc.set_exif_metadata(exif_block(6, false)).unwrap(); // an eXIf chunk
        enc.write_image(stored.as_raw(), w, h, image::ExtendedColorType::Rgb8).unwrap();
        let mut webp = Vec::new();
        let mut enc = WebPEncoder::new_lossless(&mut webp);
        enc.set_exif_metadata(exif_block(6, true)).unwrap(); // an EXIF chunk in the RIFF container
        enc.write_image(stored.as_raw(), w, h, image::ExtendedColorType::Rgb8).unwrap();
        for (name, bytes) in [("o6.png", png), ("o6.webp", webp)] {
            let photo = read(&c.file(name, &bytes)).unwrap();
            assert_eq!(photo.pixels, quadrants(), "{name}: upright, exactly");
            assert_eq!(photo.exif.as_deref().and_then(Orientation::from_exif_chunk), Some(Orientation::NoTransforms));
        }
    }

    #[test]
    fn exif_with_invalid_orientation_value_is_ignored() {
        let c = Corpus::new();
        let bytes = with_exif_app1(&jpeg(&quadrants()), &exif_block(9, false));
        let photo = read(&c.file("o9.jpg", &bytes)).unwrap();
        assert_upright(&photo.pixels, 12, "orientation 9 (invalid)");
    }

    #[test]
    fn garbage_exif_does_not_cost_the_photo() {
        let c = Corpus::new();
        let bytes = with_exif_app1(&jpeg(&quadrants()), b"MM\0\x2a\xff\xff\xff\xff garbage");
        let photo = read(&c.file("bad_exif.jpg", &bytes)).unwrap();
        assert_upright(&photo.pixels, 12, "garbage EXIF");
    }
}

/// Grey, alpha, 16-bit and CMYK become 8-bit RGB correctly.
mod photo_pixel_formats {
    use super::*;

    #[test]
    fn sixteen_bit_png_scales_to_eight_bits_with_rounding() {
        let c = Corpus::new();
        // 255 -> 1 and 511 -> 2 tell rounding apart from keeping the high byte (which gives 0 and 1).
        let values: [(u16, u8); 6] = [(65535, 255), (32896, 128), (0, 0), (255, 1), (511, 2), (65280, 254)];
        let rgb16 = ImageBuffer::<Rgb<u16>, _>::from_fn(values.len() as u32, 1, |x, _| {
            let v = values[x as usize].0;
            Rgb([v, v, 65535 - v])
        });
        let photo = read(&c.file("rgb16.png", &encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png))).unwrap();
        for (x, (v16, v8)) in values.iter().enumerate() {
            let p = photo.pixels.get_pixel(x as u32, 0).0;
            assert_eq!(p[0], *v8, "R {v16} -> {v8}");
            assert_eq!(p[2], 255 - v8, "B {} -> {}", 65535 - v16, 255 - v8);
        }

        let grey16 = ImageBuffer::<Luma<u16>, _>::from_fn(values.len() as u32, 1, |x, _| Luma([values[x as usize].0]));
        let photo = read(&c.file("grey16.png", &encode(&DynamicImage::ImageLuma16(grey16), ImageFormat::Png))).unwrap();
        for (x, (v16, v8)) in values.iter().enumerate() {
            assert_eq!(photo.pixels.get_pixel(x as u32, 0).0, [*v8; 3], "grey {v16} -> {v8}");
        }
    }

    #[test]
    fn grey_photos_become_neutral_rgb() {
        let c = Corpus::new();
        let grey = ImageBuffer::from_pixel(4, 4, Luma([77u8]));
        let photo = read(&c.file("grey.png", &encode(&DynamicImage::ImageLuma8(grey), ImageFormat::Png))).unwrap();
        assert!(photo.pixels.pixels().all(|p| p.0 == [77, 77, 77]));
        assert!(!photo.had_alpha);
    }

    #[test]
    fn grey_alpha_png_drops_alpha() {
        let c = Corpus::new();
        let img = ImageBuffer::from_fn(2, 1, |x, _| LumaA([200u8, if x == 0 { 0 } else { 255 }]));
        let photo = read(&c.file("ga.png", &encode(&DynamicImage::ImageLumaA8(img), ImageFormat::Png))).unwrap();
        assert!(photo.had_alpha);
        assert_eq!(photo.pixels.get_pixel(0, 0).0, [200; 3], "transparent pixel keeps its colour");
        assert_eq!(photo.pixels.get_pixel(1, 0).0, [200; 3]);
    }

    #[test]
    fn rgba_drops_alpha_without_compositing() {
        let c = Corpus::new();
        // As PIL convert('RGB'): the colour under a fully transparent pixel is kept, not blackened
        // or blended with white.
        let img = image::RgbaImage::from_fn(3, 1, |x, _| Rgba([10, 20, 30, [0, 128, 255][x as usize]]));
        let photo = read(&c.file("rgba.png", &encode(&DynamicImage::ImageRgba8(img), ImageFormat::Png))).unwrap();
        assert!(photo.had_alpha);
        assert!(photo.pixels.pixels().all(|p| p.0 == [10, 20, 30]), "{:?}", photo.pixels);
    }

    /// CMYK patches (ink amounts, 255 = full ink) and the RGB they print as (naive conversion).
    const CMYK_PATCHES: [([u8; 4], [u8; 3]); 5] =
        [([0, 0, 0, 0], WHITE), ([0, 255, 255, 0], RED), ([255, 0, 255, 0], GREEN), ([255, 255, 0, 0], BLUE), ([0, 0, 0, 255], [0, 0, 0])];

    fn cmyk_jpeg(color: jpeg_encoder::ColorType) -> Vec<u8> {
        // Five 16-px-wide patches; jpeg-encoder stores CMYK inverted with an Adobe APP14 marker,
        // as Photoshop does, which is how CMYK JPEGs exist in the wild.
        let (w, h) = (16 * CMYK_PATCHES.len() as u16, 16u16);
        let mut data = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                data.extend_from_slice(&CMYK_PATCHES[x as usize / 16].0);
            }
        }
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 100);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
        enc.encode(&data, w, h, color).unwrap();
        out
    }

    #[test]
    fn cmyk_and_ycck_jpegs_decode_to_correct_rgb() {
        let c = Corpus::new();
        for (name, color) in [("cmyk.jpg", jpeg_encoder::ColorType::Cmyk), ("ycck.jpg", jpeg_encoder::ColorType::CmykAsYcck)] {
            let bytes = cmyk_jpeg(color);
            let sof = find_marker(&bytes, 0xC0);
            assert_eq!(bytes[sof + 9], 4, "{name}: a four-component JPEG");
            let photo = read(&c.file(name, &bytes)).unwrap();
            assert_eq!(photo.source_format, ImageFormat::Jpeg);
            for (i, (cmyk, rgb)) in CMYK_PATCHES.iter().enumerate() {
                let got = photo.pixels.get_pixel(16 * i as u32 + 8, 8).0;
                assert_close(got, *rgb, 10, &format!("{name}: CMYK {cmyk:?}"));
            }
        }
    }
}

/// Broken and hostile files give a named error, never a panic or a huge allocation.
mod photo_hostile_files {
    use super::*;

    #[test]
    fn missing_file_and_folder_are_named_errors() {
        let c = Corpus::new();
        let err = read(&c.path().join("nope.jpg")).unwrap_err();
        assert!(matches!(err, PhotoError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.jpg: file not found"), "{err}");
        let err = read(c.path()).unwrap_err();
        assert!(matches!(err, PhotoError::NotAFile { .. }), "{err:?}");
    }

    #[test]
    fn unreadable_file_is_permission_denied() {
        use std::os::unix::fs::PermissionsExt;
        let c = Corpus::new();
        let path = c.file("locked.png", &encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Png));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        // As root, on a thread without root's permission override.
        let err = common::caps::without_permission_override(move || {
            assert!(std::fs::File::open(&path).is_err(), "mode 000 must be unreadable here");
            read(&path).unwrap_err()
        });
        assert!(matches!(err, PhotoError::PermissionDenied { .. }), "{err:?}");
    }

    #[test]
    fn zero_byte_file_is_empty_error() {
        let c = Corpus::new();
        let err = read(&c.file("empty.jpg", b"")).unwrap_err();
        assert!(matches!(err, PhotoError::Empty { .. }), "{err:?}");
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn text_named_jpg_is_not_an_image() {
        let c = Corpus::new();
        let err = read(&c.file("notes.jpg", b"Dear diary, today I scanned grandma's photos.\n")).unwrap_err();
        assert!(matches!(err, PhotoError::NotAnImage { .. }), "{err:?}");
        assert!(err.to_string().contains("not an image"), "{err}");
    }

    #[test]
    fn recognised_but_unsupported_format_is_named() {
        let c = Corpus::new();
        let err = read(&c.file("x.qoi", b"qoif\0\0\0\x01\0\0\0\x01\x03\0\0\0\0\0\0\0\0\0\0\x01")).unwrap_err();
        assert!(matches!(err, PhotoError::UnsupportedFormat { .. }), "{err:?}");
        assert!(err.to_string().contains("QOI"), "{err}");
    }

    #[test]
    fn truncated_png_is_a_corrupt_png() {
        let c = Corpus::new();
        let full = encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Png);
        for cut in [20, 40, full.len() / 2, full.len() - 13] {
            let err = read(&c.file("cut.png", &full[..cut])).unwrap_err();
            assert!(matches!(err, PhotoError::Corrupt { format: "PNG", .. }), "cut at {cut}: {err:?}");
            assert!(err.to_string().contains("PNG data is truncated or corrupt"), "{err}");
        }
    }

    #[test]
    fn truncated_jpeg_header_is_corrupt_and_truncated_scan_is_tolerated() {
        let c = Corpus::new();
        let full = jpeg(&quadrants());
        // Cut inside the headers: there is nothing to show.
        let sos = find_marker(&full, 0xDA);
        for cut in [3, 30, sos - 10] {
            let err = read(&c.file("cut.jpg", &full[..cut])).unwrap_err();
            assert!(matches!(err, PhotoError::Corrupt { format: "JPEG", .. }), "cut at {cut}: {err:?}");
        }
        // Cut inside the entropy-coded data: zune-jpeg (non-strict, like libjpeg) decodes what is
        // there and fills the rest, so a half-downloaded photo still opens at full size.
        let half = read(&c.file("half.jpg", &full[..(sos + full.len()) / 2])).unwrap();
        assert_eq!(half.pixels.dimensions(), (64, 32));
        assert_close(half.pixels.get_pixel(16, 8).0, RED, 12, "the decoded top-left survives");
    }

    #[test]
    fn png_with_bad_crc_is_refused_as_corrupt() {
        let c = Corpus::new();
        let mut png = encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Png);
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
        let len = u32::from_be_bytes(png[idat..idat + 4].try_into().unwrap()) as usize;
        png[idat + 8 + len] ^= 0xFF; // first byte of IDAT's CRC
        let err = read(&c.file("badcrc.png", &png)).unwrap_err();
        assert!(matches!(err, PhotoError::Corrupt { format: "PNG", .. }), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("crc"), "{err}");
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics() {
        let c = Corpus::new();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("png", encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Png)),
            ("jpg", jpeg(&quadrants())),
            ("webp", encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::WebP)),
            ("tiff", encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Tiff)),
            ("bmp", encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Bmp)),
            ("gif", encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Gif)),
        ];
        for (ext, good) in cases {
            // Flip bytes at many offsets: each read must return (Ok or a PhotoError), never unwind.
            for i in (8..good.len()).step_by((good.len() / 40).max(1)) {
                let mut bad = good.clone();
                bad[i] ^= 0x5A;
                let _ = read(&c.file(&format!("flip.{ext}"), &bad));
                let _ = read(&c.file(&format!("cut.{ext}"), &good[..i]));
            }
        }
    }

    #[test]
    fn decompression_bomb_is_refused_from_the_header() {
        let c = Corpus::new();
        let path = c.file("bomb.png", &png_bomb(60000, 60000));
        let err = read(&path).unwrap_err();
        match &err {
            PhotoError::TooLarge { width: 60000, height: 60000, limit: 100_000_000, .. } => {}
            other => panic!("want TooLarge, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("3600.0 megapixels") && msg.contains("100.0 megapixels") && msg.contains("max_pixels"), "{msg}");

        // The same from a JPEG whose SOF claims 65000x65000.
        let mut bomb = jpeg(&quadrants());
        let sof = find_marker(&bomb, 0xC0);
        bomb[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
        let err = read(&c.file("bomb.jpg", &bomb)).unwrap_err();
        assert!(matches!(err, PhotoError::TooLarge { width: 65000, height: 65000, .. }), "{err:?}");

        // Raising the limit is how a user accepts a huge file; the memory bound still applies.
        let limits = ReadLimits { max_pixels: u64::MAX, ..ReadLimits::default() };
        let err = read_photo(&path, &limits).unwrap_err();
        assert!(matches!(err, PhotoError::TooMuchMemory { .. }), "{err:?}");
        assert!(err.to_string().contains("max_alloc_bytes"), "{err}");
    }

    #[test]
    fn memory_limit_refuses_before_decoding() {
        let c = Corpus::new();
        let img = DynamicImage::ImageRgba8(image::RgbaImage::new(100, 100));
        let path = c.file("rgba.png", &encode(&img, ImageFormat::Png));
        // RGBA buffer 40 000 bytes + RGB copy 30 000 bytes.
        let tight = ReadLimits { max_alloc_bytes: 69_999, ..ReadLimits::default() };
        let err = read_photo(&path, &tight).unwrap_err();
        assert!(matches!(err, PhotoError::TooMuchMemory { needed: 70_000, limit: 69_999, .. }), "{err:?}");
        let enough = ReadLimits { max_alloc_bytes: 70_000, ..ReadLimits::default() };
        assert!(read_photo(&path, &enough).is_ok());
    }
}

/// Results are written atomically with their metadata.
mod photo_write {
    use super::*;

    /// Stand-in ICC bytes: decoders and encoders carry the profile opaquely.
    fn fake_icc() -> Vec<u8> {
        (0..600u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn writing_keeps_icc_and_exif_with_orientation_reset() {
        let c = Corpus::new();
        let meta = PhotoMeta { icc: Some(fake_icc()), exif: Some(exif_block(6, true)), ..PhotoMeta::default() };
        for format in [OutputFormat::Png, OutputFormat::Jpeg { quality: 95 }, OutputFormat::Webp] {
            let path = c.path().join(format!("out.{}", format.extension()));
            write_photo(&path, &quadrants(), format, &meta).unwrap();
            let back = read(&path).unwrap();
            assert_eq!(back.icc.as_deref(), Some(&fake_icc()[..]), "{format:?}: ICC");
            assert_eq!(back.exif, Some(exif_block(1, true)), "{format:?}: EXIF, orientation now 1");
            // Not rotated on the way back in: the pixels were already upright.
            let lossy = matches!(format, OutputFormat::Jpeg { .. });
            assert_upright(&back.pixels, if lossy { 12 } else { 0 }, &format!("{format:?}"));
            if !lossy {
                assert_eq!(back.pixels, quadrants(), "{format:?} is lossless");
            }
        }
        let names: Vec<_> = std::fs::read_dir(c.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "no temporary files left: {names:?}");
    }

    #[test]
    fn read_then_write_carries_metadata() {
        let c = Corpus::new();
        let bytes = with_exif_app1(&jpeg(&stored_for(8, &quadrants())), &exif_block(8, false));
        let photo = read(&c.file("in.jpg", &bytes)).unwrap();
        let out = c.path().join("out.png");
        write_photo(&out, &photo.pixels, OutputFormat::Png, &photo.meta()).unwrap();
        let back = read(&out).unwrap();
        assert_eq!(back.exif, Some(exif_block(1, false)));
        assert_eq!(back.pixels, photo.pixels, "upright once, not turned again");
    }

    #[test]
    fn writing_without_metadata_works_and_jpeg_quality_is_clamped() {
        let c = Corpus::new();
        let mut bytes = std::collections::BTreeMap::new();
        for quality in [0, 1, 100, 255] {
            let path = c.path().join(format!("q{quality}.jpg"));
            write_photo(&path, &quadrants(), OutputFormat::Jpeg { quality }, &PhotoMeta::default()).unwrap();
            let back = read(&path).unwrap();
            assert!(back.exif.is_none() && back.icc.is_none());
            assert_eq!(back.pixels.dimensions(), (64, 32));
            bytes.insert(quality, std::fs::read(&path).unwrap());
        }
        // The quality reaches the encoder, and out-of-range values write what the nearest bound writes.
        assert_ne!(bytes[&1], bytes[&100], "quality 1 and 100 give the same file");
        assert_eq!(bytes[&0], bytes[&1], "quality 0 is written as 1");
        assert_eq!(bytes[&255], bytes[&100], "quality 255 is written as 100");
    }

    #[test]
    fn failed_write_leaves_nothing_and_keeps_the_old_file() {
        let c = Corpus::new();
        let path = c.path().join("result.jpg");
        std::fs::write(&path, b"previous result").unwrap();
        // JPEG cannot hold a 0x0 image: the encoder fails after the temp file was created.
        let empty = RgbImage::new(0, 0);
        let err = write_photo(&path, &empty, OutputFormat::Jpeg { quality: 90 }, &PhotoMeta::default()).unwrap_err();
        assert!(matches!(err, PhotoError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("result.jpg"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"previous result", "old file untouched");
        assert_eq!(std::fs::read_dir(c.path()).unwrap().count(), 1, "no temp file left");

        let nowhere = c.path().join("no/such/dir/x.png");
        let err = write_photo(&nowhere, &quadrants(), OutputFormat::Png, &PhotoMeta::default()).unwrap_err();
        assert!(matches!(err, PhotoError::Write { .. }), "{err:?}");
    }

    #[test]
    fn read_only_folder_write_fails_cleanly() {
        use std::os::unix::fs::PermissionsExt;
        let c = Corpus::new();
        let dir = c.path().join("ro");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        // As root, on a thread without root's permission override.
        let target = dir.clone();
        let err = common::caps::without_permission_override(move || {
            assert!(std::fs::write(target.join("probe"), b"").is_err(), "a 0555 folder must be read-only here");
            write_photo(&target.join("out.png"), &quadrants(), OutputFormat::Png, &PhotoMeta::default()).unwrap_err()
        });
        assert!(matches!(err, PhotoError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("ermission denied"), "{err}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left behind");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The project's shared test photos.
mod photo_shared_files {
    use super::*;

    fn shared(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/photos").join(name)
    }

    #[test]
    fn solvay_rgba_scan_reads_as_rgb() {
        let photo = read(&shared("solvay_1927.png")).unwrap();
        assert_eq!(photo.source_format, ImageFormat::Png);
        assert_eq!(photo.pixels.dimensions(), (1328, 568));
        assert!(photo.had_alpha);
        // Same pixels as the decoder's RGBA with alpha dropped.
        let rgba = image::open(shared("solvay_1927.png")).unwrap().into_rgba8();
        for (p, q) in photo.pixels.pixels().zip(rgba.pixels()).step_by(997) {
            assert_eq!(p.0, [q[0], q[1], q[2]]);
        }
    }

    #[test]
    fn astronaut_reads() {
        let photo = read(&shared("astronaut.png")).unwrap();
        assert_eq!(photo.source_format, ImageFormat::Png);
        assert_eq!(photo.pixels.dimensions(), (512, 512));
        assert!(!photo.had_alpha);
    }
}
