//! Nothing of the original lost on the way out: a scan's resolution (JFIF density, PNG pHYs, TIFF
//! resolution tags) and its transparency come back in the result, through a real restore, read
//! back with readers independent of our writer (the png crate, the image crate, the JFIF bytes).

mod common;
use std::path::{Path, PathBuf};

use common::{golden, restore_with_golden};
use image::codecs::jpeg::{JpegEncoder, PixelDensity, PixelDensityUnit};
use image::{ImageEncoder, RgbImage, RgbaImage};

fn astronaut() -> RgbImage {
    common::rgb(&common::repo_root().join("../shared/photos/astronaut.png"))
}

/// A PNG's pixels per metre, as the png crate reads them (`None`: no pHYs or aspect only).
fn png_ppm(path: &Path) -> Option<(u32, u32)> {
    let reader = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())).read_info().unwrap();
    reader.info().pixel_dims.filter(|d| d.unit == png::Unit::Meter).map(|d| (d.xppu, d.yppu))
}

/// A JPEG's JFIF density as (unit, x, y), from its APP0 bytes.
fn jfif(path: &Path) -> (u8, u16, u16) {
    let bytes = std::fs::read(path).unwrap();
    let at = bytes.windows(5).position(|w| w == b"JFIF\0").expect("a JFIF segment");
    let f = &bytes[at..];
    (f[7], u16::from_be_bytes([f[8], f[9]]), u16::from_be_bytes([f[10], f[11]]))
}

fn write_jpeg_at(path: &Path, image: &RgbImage, dpi: u16) {
    let mut bytes = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 92);
    encoder.set_pixel_density(PixelDensity { density: (dpi, dpi), unit: PixelDensityUnit::Inches });
    encoder.write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn write_tiff_at(path: &Path, image: &RgbImage, dots_per_cm: u32) {
    use tiff::encoder::{Rational, TiffEncoder, colortype::RGB8};
    let mut encoder = TiffEncoder::new(std::fs::File::create(path).unwrap()).unwrap();
    let mut tiff = encoder.new_image::<RGB8>(image.width(), image.height()).unwrap();
    tiff.resolution(tiff::tags::ResolutionUnit::Centimeter, Rational { n: dots_per_cm, d: 1 });
    tiff.write_data(image.as_raw()).unwrap();
}

fn one_output(dir: &Path, ext: &str) -> PathBuf {
    let found: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn a_scan_s_resolution_comes_back_in_each_output_format_and_scales_with_upscaling() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = astronaut();
    let jpeg = tmp.path().join("in/scan.jpg");
    std::fs::create_dir_all(jpeg.parent().unwrap()).unwrap();
    write_jpeg_at(&jpeg, &photo, 300);

    // JPEG at 300 dpi -> PNG: pHYs of 300 dpi (11811 per metre).
    let out = tmp.path().join("png");
    restore_with_golden(&jpeg, &out, &[]);
    assert_eq!(png_ppm(&one_output(&out, "png")), Some((11811, 11811)));
    // -> JPEG: JFIF 300 per inch.
    let out = tmp.path().join("jpg");
    restore_with_golden(&jpeg, &out, &["--format", "jpg"]);
    assert_eq!(jfif(&one_output(&out, "jpg")), (1, 300, 300));
    // Upscaled ×2: the same print size, so twice the density.
    let out = tmp.path().join("sr");
    let x2 = golden().join("rrdbnet/x2.pth");
    restore_with_golden(&jpeg, &out, &["--upscale", "2", "--sr-weights", x2.to_str().unwrap()]);
    assert_eq!(png_ppm(&one_output(&out, "png")), Some((23622, 23622)));

    // A TIFF scan at 118 dots per cm (299.72 dpi) -> PNG at 11800 per metre.
    let tiff = tmp.path().join("tin/scan.tif");
    std::fs::create_dir_all(tiff.parent().unwrap()).unwrap();
    write_tiff_at(&tiff, &photo, 118);
    let out = tmp.path().join("tiff");
    restore_with_golden(&tiff, &out, &[]);
    assert_eq!(png_ppm(&one_output(&out, "png")), Some((11800, 11800)));
}

#[test]
fn transparency_comes_back_bit_for_bit_in_png_webp_and_tiff_and_is_left_out_of_jpeg() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = astronaut();
    // The corners cut away (transparent), a soft band half transparent; the faces opaque.
    let (w, h) = photo.dimensions();
    let alpha = |x: u32, y: u32| -> u8 {
        if x < 60 && y < 60 {
            0
        } else if y > h - 40 {
            (x * 255 / w) as u8
        } else {
            255
        }
    };
    let rgba = RgbaImage::from_fn(w, h, |x, y| {
        let p = photo.get_pixel(x, y);
        image::Rgba([p[0], p[1], p[2], alpha(x, y)])
    });
    let input = tmp.path().join("in/cutout.png");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    rgba.save(&input).unwrap();
    for (format, ext) in [("png", "png"), ("webp", "webp"), ("tiff", "tif")] {
        let out = tmp.path().join(format);
        restore_with_golden(&input, &out, &["--format", format]);
        let result = image::open(one_output(&out, ext)).unwrap();
        assert!(result.color().has_alpha(), "{format}: {:?}", result.color());
        let result = result.to_rgba8();
        let kept = result.enumerate_pixels().all(|(x, y, p)| p[3] == alpha(x, y));
        assert!(kept, "{format}: the alpha channel is the input's, every pixel");
    }
    let out = tmp.path().join("jpg");
    restore_with_golden(&input, &out, &["--format", "jpg"]);
    assert!(!image::open(one_output(&out, "jpg")).unwrap().color().has_alpha());
}

/// A JPEG APP1 XMP segment right after SOI, as photo managers write it.
fn with_xmp_app1(jpeg: &[u8], xmp: &str) -> Vec<u8> {
    let mut data = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    data.extend_from_slice(xmp.as_bytes());
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(&jpeg[2..]);
    out
}

const CAPTION: &str = "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
    <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" \
    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">Grandma and \
    Aunt Rose, 1931</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>";

/// The XMP packet and EXIF block of `path`, as the image crate's decoders read them.
fn xmp_and_exif(path: &Path) -> (Option<String>, Option<Vec<u8>>) {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::open(path).unwrap().with_guessed_format().unwrap().into_decoder().unwrap();
    let xmp = decoder.xmp_metadata().unwrap().map(|x| String::from_utf8(x).unwrap());
    (xmp, decoder.exif_metadata().unwrap())
}

/// An ASCII field of IFD0, as kamadak-exif reads it.
fn exif_text(block: &[u8], tag: exif::Tag) -> Option<String> {
    let parsed = exif::Reader::new().read_raw(block.to_vec()).unwrap();
    match &parsed.get_field(tag, exif::In::PRIMARY)?.value {
        exif::Value::Ascii(parts) => Some(String::from_utf8_lossy(&parts[0]).into_owned()),
        other => panic!("{tag}: {other:?}"),
    }
}

/// The astronaut as a family archive's JPEG: 300 dpi, EXIF (a description), an XMP caption.
fn write_family_jpeg(path: &Path, big_endian: bool) {
    let mut jpeg = Vec::new();
    let photo = astronaut();
    let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, 92);
    encoder.set_pixel_density(PixelDensity { density: (300, 300), unit: PixelDensityUnit::Inches });
    encoder.write_image(photo.as_raw(), photo.width(), photo.height(), image::ExtendedColorType::Rgb8).unwrap();
    let jpeg = with_xmp_app1(&common::corpus::with_exif_app1(&jpeg, &common::corpus::exif_block(1, big_endian)), CAPTION);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, jpeg).unwrap();
}

#[test]
fn captions_and_exif_travel_into_every_format_with_what_was_done_unless_stripped() {
    let tmp = tempfile::tempdir().unwrap();
    for big_endian in [false, true] {
        let input = tmp.path().join(format!("in-{big_endian}/family.jpg"));
        write_family_jpeg(&input, big_endian);
        for (format, ext) in [("png", "png"), ("jpg", "jpg"), ("webp", "webp")] {
            let out = tmp.path().join(format!("{format}-{big_endian}"));
            restore_with_golden(&input, &out, &["--format", format]);
            let (xmp, exif) = xmp_and_exif(&one_output(&out, ext));
            let xmp = xmp.unwrap_or_else(|| panic!("{format}: no XMP"));
            assert!(xmp.contains("Grandma and Aunt Rose, 1931"), "{format}: the caption is kept: {xmp}");
            assert!(xmp.contains(&format!("stEvt:softwareAgent=\"gpen-studio {}\"", env!("CARGO_PKG_VERSION"))), "{format}: {xmp}");
            assert!(
                xmp.contains("face(s) with weights.pth at strength 1.00; faces found with MTCNN; pasted with the feathered rectangle"),
                "{format}: the history says what was done: {xmp}"
            );
            let exif = exif.unwrap_or_else(|| panic!("{format}: no EXIF"));
            assert_eq!(exif_text(&exif, exif::Tag::ImageDescription).as_deref(), Some("gpen-studio test"), "{format}");
            let software = format!("gpen-studio {}", env!("CARGO_PKG_VERSION"));
            assert_eq!(exif_text(&exif, exif::Tag::Software), Some(software), "{format}");
        }
    }
    // Stripped: neither EXIF nor XMP, but the print size stays.
    let input = tmp.path().join("in-false/family.jpg");
    let out = tmp.path().join("stripped");
    restore_with_golden(&input, &out, &["--strip-metadata"]);
    let result = one_output(&out, "png");
    assert_eq!(xmp_and_exif(&result), (None, None));
    assert_eq!(png_ppm(&result), Some((11811, 11811)), "the resolution is kept");
}

/// `--format tiff` (deflate) and `tiff-lzw` for archives: the same pixels as the PNG result, with the
/// caption and history (XMP), the program and the resolution as the file's own tags.
#[test]
fn a_tiff_result_is_lossless_and_carries_the_caption_the_program_and_the_resolution() {
    use tiff::decoder::ifd::Value;
    use tiff::tags::Tag;
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in/family.jpg");
    write_family_jpeg(&input, false);
    let png = tmp.path().join("png");
    restore_with_golden(&input, &png, &[]);
    let png_pixels = image::open(one_output(&png, "png")).unwrap().to_rgb8();
    for format in ["tiff", "tiff-lzw"] {
        let out = tmp.path().join(format);
        restore_with_golden(&input, &out, &["--format", format]);
        let result = one_output(&out, "tif");
        assert!(image::open(&result).unwrap().to_rgb8() == png_pixels, "{format}: lossless, the PNG's pixels");
        let (xmp, _) = xmp_and_exif(&result);
        let xmp = xmp.unwrap_or_else(|| panic!("{format}: no XMP"));
        assert!(xmp.contains("Grandma and Aunt Rose, 1931") && xmp.contains("stEvt:softwareAgent"), "{format}: {xmp}");
        let mut tags = tiff::decoder::Decoder::new(std::fs::File::open(&result).unwrap()).unwrap();
        let description = tags.get_tag_ascii_string(Tag::ImageDescription).unwrap();
        assert_eq!(description, "gpen-studio test", "{format}: EXIF's description is the TIFF's own");
        let software = tags.get_tag_ascii_string(Tag::Software).unwrap();
        assert_eq!(software, format!("gpen-studio {}", env!("CARGO_PKG_VERSION")));
        let resolution = match tags.get_tag(Tag::XResolution).unwrap() {
            Value::Rational(n, d) => n as f64 / d as f64,
            other => panic!("{other:?}"),
        };
        assert_eq!((resolution, tags.get_tag_u32(Tag::ResolutionUnit).unwrap()), (300.0, 2), "{format}: 300 per inch");
        let compression = tags.get_tag_u32(Tag::Compression).unwrap();
        assert_eq!(compression, if format == "tiff" { 8 } else { 5 }, "{format}: deflate (8) or LZW (5)");
    }
}

/// EXIF as a camera writes it: IFD0 with a description and the pointer to EXIF's own directory,
/// which holds the exposure (RATIONAL), the ISO (SHORT) and the date taken (ASCII).
fn camera_exif(big_endian: bool) -> Vec<u8> {
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let entry = |e: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        e.extend_from_slice(&u16b(tag));
        e.extend_from_slice(&u16b(kind));
        e.extend_from_slice(&u32b(count));
        e.extend_from_slice(&value);
    };
    let description = b"a scan\0\0";
    let date = b"1931:06:01 12:00:00\0";
    // Header 8, IFD0 (2 entries) 2 + 24 + 4 = 30, description 8, Exif IFD (3 entries) 2 + 36 + 4,
    // then the exposure (8) and the date (20).
    let (desc_at, exif_at) = (38u32, 46u32);
    let (exposure_at, date_at) = (exif_at + 42, exif_at + 50);
    let mut e = if big_endian { b"MM\0*".to_vec() } else { b"II*\0".to_vec() };
    e.extend_from_slice(&u32b(8));
    e.extend_from_slice(&u16b(2));
    entry(&mut e, 0x010E, 2, 7, u32b(desc_at));
    entry(&mut e, 0x8769, 4, 1, u32b(exif_at));
    e.extend_from_slice(&u32b(0));
    e.extend_from_slice(description);
    e.extend_from_slice(&u16b(3));
    entry(&mut e, 0x829A, 5, 1, u32b(exposure_at));
    entry(&mut e, 0x8827, 3, 1, [u16b(400), [0, 0]].concat().try_into().unwrap());
    entry(&mut e, 0x9003, 2, 20, u32b(date_at));
    e.extend_from_slice(&u32b(0));
    e.extend_from_slice(&[u32b(1), u32b(125)].concat());
    e.extend_from_slice(date);
    e
}

/// A TIFF result has no EXIF block of its own: EXIF's description becomes the file's tag and EXIF's
/// own directory (exposure, ISO, date taken) the file's Exif directory, read back by kamadak-exif.
#[test]
fn a_tiff_result_keeps_the_camera_s_exif_in_its_own_directories() {
    let tmp = tempfile::tempdir().unwrap();
    for big_endian in [false, true] {
        let mut jpeg = Vec::new();
        let photo = astronaut();
        JpegEncoder::new_with_quality(&mut jpeg, 90)
            .write_image(photo.as_raw(), photo.width(), photo.height(), image::ExtendedColorType::Rgb8)
            .unwrap();
        let input = tmp.path().join(format!("in-{big_endian}/camera.jpg"));
        std::fs::create_dir_all(input.parent().unwrap()).unwrap();
        std::fs::write(&input, common::corpus::with_exif_app1(&jpeg, &camera_exif(big_endian))).unwrap();
        let out = tmp.path().join(format!("out-{big_endian}"));
        restore_with_golden(&input, &out, &["--format", "tiff"]);
        let file = std::fs::File::open(one_output(&out, "tif")).unwrap();
        let exif = exif::Reader::new().read_from_container(&mut std::io::BufReader::new(file)).unwrap();
        let field = |tag| exif.get_field(tag, exif::In::PRIMARY).map(|f| f.display_value().to_string());
        assert_eq!(field(exif::Tag::ImageDescription).as_deref(), Some("\"a scan\""), "big endian {big_endian}");
        assert_eq!(field(exif::Tag::ExposureTime).as_deref(), Some("1/125"), "big endian {big_endian}");
        assert_eq!(field(exif::Tag::PhotographicSensitivity).as_deref(), Some("400"), "big endian {big_endian}");
        assert_eq!(field(exif::Tag::DateTimeOriginal).as_deref(), Some("1931-06-01 12:00:00"), "big endian {big_endian}");
    }
}
