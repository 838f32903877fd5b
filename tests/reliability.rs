//! End-to-end reliability: a generated corpus of bad, odd and hostile inputs goes through the real
//! `gpen-studio restore` command (CPU, the small golden GPEN model). For every input: a clear
//! per-photo error naming the file, or a correct result; the rest of the batch completes; the
//! originals are byte-identical afterwards; no partial or temporary file is left in the output.
//!
//! The results are recorded in docs/RELIABILITY.md. A kill -9 mid-run is tests/crash_recovery.rs.

mod common;
use common::corpus::*;
use common::*;
use image::{DynamicImage, ImageBuffer, ImageFormat, LumaA, Rgb, RgbImage};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

// ---------------------------------------------------------------- inputs

fn astronaut() -> RgbImage {
    image::open(repo_root().join("../shared/photos/astronaut.png")).unwrap().to_rgb8()
}

/// The astronaut's top 512×320: one face, wide, so a missed 90° turn shows in the dimensions.
fn wide_astronaut() -> RgbImage {
    image::imageops::crop_imm(&astronaut(), 0, 0, 512, 320).to_image()
}

/// A face-free gradient.
fn sky(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x / 2 + y / 3) as u8, 120, 200]))
}

fn png(img: &RgbImage) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Png)
}

/// The photo as a CMYK JPEG (Adobe, inverted, as Photoshop writes it): C = 255 − R, …, K = 0.
fn cmyk_jpeg(img: &RgbImage) -> Vec<u8> {
    let data: Vec<u8> = img.pixels().flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 0]).collect();
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, 95);
    enc.encode(&data, img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Cmyk).unwrap();
    out
}

/// Two frames (the photo, then a faceless one) looping forever.
fn animated_gif(img: &RgbImage) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 30);
        enc.set_repeat(Repeat::Infinite).unwrap();
        let rgba = |i: &RgbImage| DynamicImage::ImageRgb8(i.clone()).to_rgba8();
        let frames = [image::Frame::new(rgba(img)), image::Frame::new(rgba(&sky(img.width(), img.height())))];
        enc.encode_frames(frames).unwrap();
    }
    out
}

/// 10×10 tiles of the astronaut's face, each 80 px (face about 40×50 px): 100 faces.
fn hundred_faces() -> RgbImage {
    let face = image::imageops::crop_imm(&astronaut(), 140, 30, 170, 170).to_image();
    let tile = image::imageops::resize(&face, 80, 80, image::imageops::FilterType::Triangle);
    let mut mosaic = RgbImage::new(800, 800);
    for i in 0..100 {
        image::imageops::replace(&mut mosaic, &tile, (i % 10) * 80, (i / 10) * 80);
    }
    mosaic
}

// ---------------------------------------------------------------- running the CLI

fn restore_args(cmd: &mut Command, inputs: &[&OsStr], out: &Path) {
    cmd.args(["restore", "--device", "cpu", "--batch", "8", "--weights"]).arg(golden_weights()).args(inputs).arg("-o").arg(out);
}

fn restore(inputs: &[&OsStr], out: &Path) -> Output {
    let mut cmd = Command::new(bin());
    restore_args(&mut cmd, inputs, out);
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The line of `stderr` that reports on `name` (an `error:` or `note:` line).
fn line_for<'a>(stderr: &'a str, name: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| (l.starts_with("error: ") || l.starts_with("note: ")) && l.contains(name))
        .unwrap_or_else(|| panic!("no error/note line names {name}:\n{stderr}"))
}

/// The counts of the summary line `photos restored R, without faces N, already done D, failed F;
/// faces restored FR, failed FF`.
fn summary(stderr: &str) -> [usize; 6] {
    let line = stderr.lines().find(|l| l.starts_with("photos restored ")).unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    let nums: Vec<usize> = line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    nums[..6].try_into().unwrap_or_else(|_| panic!("summary {line}"))
}

/// No temporary (`.<pid>.part-…`) or hidden file is left in the output folder.
fn assert_no_partials(out: &Path) {
    for e in std::fs::read_dir(out).unwrap() {
        let name = e.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(!name.starts_with('.') && !name.contains(".part"), "partial file left: {name}");
    }
}

fn names(out: &Path) -> Vec<String> {
    snapshot(out).into_iter().map(|(n, _)| n).collect()
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

fn no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
}

// ---------------------------------------------------------------- the corpus

#[test]
fn the_bad_input_corpus_gives_per_photo_errors_and_the_batch_completes() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();

    let face = astronaut();
    let face_jpeg = jpeg(&face);
    let face_png = png(&face);
    let sos = find_marker(&face_jpeg, 0xDA);

    // Normal photos: the rest of the batch.
    put("good.png", &face_png);
    put("good_jpeg.jpg", &face_jpeg);
    // Broken files.
    put("empty.jpg", b"");
    put("notes.jpg", b"Dear diary, today I scanned grandma's photos.\n");
    put("truncated_header.jpg", &face_jpeg[..sos - 20]);
    put("truncated_scan.jpg", &face_jpeg[..sos + (face_jpeg.len() - sos) * 2 / 3]);
    put("truncated.png", &face_png[..face_png.len() / 2]);
    let mut bad_crc = face_png.clone();
    let idat = bad_crc.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
    let len = u32::from_be_bytes(bad_crc[idat..idat + 4].try_into().unwrap()) as usize;
    bad_crc[idat + 8 + len] ^= 0xFF; // the first IDAT chunk's CRC
    put("bad_crc.png", &bad_crc);
    put("bomb.png", &png_bomb(60000, 60000));
    // Odd but valid files.
    put("one_pixel.png", &png(&RgbImage::from_pixel(1, 1, Rgb([90, 60, 30]))));
    let rgb16 = ImageBuffer::<Rgb<u16>, _>::from_fn(512, 512, |x, y| {
        let p = face.get_pixel(x, y).0;
        Rgb(p.map(|v| u16::from(v) * 257))
    });
    put("deep_16bit.png", &encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png));
    put("cmyk.jpg", &cmyk_jpeg(&face));
    let grey_alpha = ImageBuffer::from_fn(512, 512, |x, y| {
        let p = face.get_pixel(x, y).0;
        let l = ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8;
        LumaA([l, if x < 256 { 255 } else { 128 }])
    });
    put("grey_alpha.png", &encode(&DynamicImage::ImageLumaA8(grey_alpha), ImageFormat::Png));
    put("animated.gif", &animated_gif(&face));
    put("no_face.png", &png(&sky(320, 240)));
    let wide = wide_astronaut();
    for o in 1..=8u16 {
        put(&format!("exif_{o}.jpg"), &with_exif_app1(&jpeg(&stored_for(o, &wide)), &exif_block(o, o % 2 == 0)));
    }
    let before = snapshot(dir.path());

    let started = std::time::Instant::now();
    let run = restore(&[dir.path().as_os_str()], out.path());
    let err = stderr(&run);
    eprintln!("--- corpus run ({:.1} s) ---\n{err}", started.elapsed().as_secs_f64());
    no_panic(&err);
    assert!(!run.status.success(), "bad files make the exit status non-zero");

    // Every bad file is named, with what is wrong in plain words.
    for (name, says) in [
        ("empty.jpg", &["the file is empty (0 bytes)"][..]),
        ("notes.jpg", &["not an image"]),
        ("truncated_header.jpg", &["JPEG data is truncated or corrupt"]),
        ("truncated.png", &["PNG data is truncated or corrupt"]),
        ("bad_crc.png", &["PNG data is truncated or corrupt", "CRC"]),
        ("bomb.png", &["60000x60000", "3600.0 megapixels", "above the limit of 100.0 megapixels", "--max-megapixels"]),
    ] {
        let line = line_for(&err, name);
        assert!(line.starts_with("error: "), "{line}");
        for s in says {
            assert!(line.to_lowercase().contains(&s.to_lowercase()), "{name}: want {s:?} in {line:?}");
        }
        // The path is said once: the CLI's prefix, not again inside the message.
        assert_eq!(line.matches(name).count(), 1, "{line}");
        assert!(!out.path().join(Path::new(name).with_extension("png")).exists(), "{name}: nothing written");
    }
    for name in ["no_face.png", "one_pixel.png"] {
        assert!(line_for(&err, name).ends_with("no faces found; written unchanged"), "{name}");
    }
    // 15 restored (2 normal, truncated scan, 16-bit, CMYK, grey+alpha, GIF, 8 orientations), one
    // face each; 2 without faces; 6 failed.
    assert_eq!(summary(&err), [15, 2, 0, 6, 15, 0], "{err}");
    assert!(!err.contains("\n)"), "every error is one line:\n{err}");

    // Results: right size, upright, unchanged where no face was found.
    let o = |n: &str| rgb(&out.path().join(n));
    for n in ["good.png", "good_jpeg.png", "truncated_scan.png", "deep_16bit.png", "cmyk.png", "grey_alpha.png", "animated.png"] {
        assert_eq!(o(n).dimensions(), (512, 512), "{n}");
    }
    assert!(psnr(&o("deep_16bit.png"), &o("good.png")) > 40.0, "16-bit input restores like its 8-bit original");
    assert!(psnr(&o("cmyk.png"), &o("good.png")) > 25.0, "CMYK colours right: {:.1} dB", psnr(&o("cmyk.png"), &o("good.png")));
    let ga = o("grey_alpha.png");
    // Away from the face (rows 400+) grey stays grey; GPEN itself may tint the face it restores.
    assert!(ga.enumerate_pixels().filter(|(_, y, _)| *y >= 400).all(|(_, _, p)| p[0] == p[1] && p[1] == p[2]), "grey stays grey");
    assert_eq!(o("no_face.png"), sky(320, 240), "no face: written unchanged");
    assert_eq!(o("one_pixel.png"), RgbImage::from_pixel(1, 1, Rgb([90, 60, 30])));

    let upright = o("exif_1.png");
    assert_eq!(upright.dimensions(), (512, 320));
    for n in 2..=8 {
        let r = o(&format!("exif_{n}.png"));
        assert_eq!(r.dimensions(), (512, 320), "orientation {n}: turned upright");
        let db = psnr(&r, &upright);
        let mirrored = psnr(&image::imageops::flip_horizontal(&r), &upright);
        let upside_down = psnr(&image::imageops::flip_vertical(&r), &upright);
        eprintln!("orientation {n}: {db:.1} dB to the upright result (mirrored {mirrored:.1}, upside down {upside_down:.1})");
        assert!(db > 30.0 && db > mirrored + 10.0 && db > upside_down + 10.0, "orientation {n}: {db:.1} dB");
    }

    assert_eq!(snapshot(dir.path()), before, "originals byte-identical");
    assert_no_partials(out.path());
    let took = started.elapsed().as_secs_f64();
    eprintln!("corpus: {} outputs in {took:.1} s", names(out.path()).len());
}

#[test]
fn a_photo_without_faces_alone_is_written_unchanged_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = dir.path().join("landscape.png");
    std::fs::write(&input, png(&sky(320, 240))).unwrap();
    let run = restore(&[input.as_os_str()], out.path());
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(line_for(&err, "landscape.png").starts_with("note: "), "{err}");
    assert_eq!(summary(&err), [0, 1, 0, 0, 0, 0]);
    assert_eq!(rgb(&out.path().join("landscape.png")), sky(320, 240));
    assert_no_partials(out.path());
}

#[test]
fn a_photo_with_a_hundred_faces_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let input = dir.path().join("crowd.png");
    std::fs::write(&input, png(&hundred_faces())).unwrap();
    let run = restore(&[input.as_os_str()], out.path());
    let err = stderr(&run);
    eprintln!("--- 100 faces ---\n{err}");
    assert!(run.status.success(), "{err}");
    let [restored, _, _, failed, faces, faces_failed] = summary(&err);
    eprintln!("100-face mosaic: {faces} faces found and restored");
    assert_eq!((restored, failed, faces_failed), (1, 0, 0));
    assert!((95..=100).contains(&faces), "{faces} faces restored");
    assert_eq!(rgb(&out.path().join("crowd.png")).dimensions(), (800, 800));
    assert_no_partials(out.path());
}

#[test]
fn the_same_photo_twice_is_restored_once_per_distinct_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let a = dir.path().join("portrait.png");
    let b = dir.path().join("portrait_copy.png");
    std::fs::copy(repo_root().join("../shared/photos/astronaut.png"), &a).unwrap();
    std::fs::copy(&a, &b).unwrap();
    let before = snapshot(dir.path());
    // The same file named twice, and once more through its folder: collect_photos lists a file
    // once (by canonical path). The copy under another name is another photo.
    let run = restore(&[a.as_os_str(), a.as_os_str(), dir.path().as_os_str()], out.path());
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert_eq!(summary(&err), [2, 0, 0, 0, 2, 0], "{err}");
    assert!(err.starts_with("2 photos;") || err.contains("\n2 photos;"), "{err}");
    assert_eq!(names(out.path()), ["portrait.png", "portrait_copy.png"]);
    assert_eq!(std::fs::read(out.path().join("portrait.png")).unwrap(), std::fs::read(out.path().join("portrait_copy.png")).unwrap());
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_file_name_that_is_not_utf8_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"caf\xe9_\xff.png"); // Latin-1 é and a stray byte
    let input = dir.path().join(name);
    std::fs::copy(repo_root().join("../shared/photos/astronaut.png"), &input).unwrap();
    // And a broken one, so an error line has to print the name too.
    let broken = dir.path().join(OsStr::from_bytes(b"bro\xffken.jpg"));
    std::fs::write(&broken, b"not a jpeg").unwrap();
    let before = snapshot(dir.path());
    let run = restore(&[dir.path().as_os_str()], out.path());
    let err = stderr(&run);
    eprintln!("--- non-UTF-8 names ---\n{err}");
    no_panic(&err);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(line_for(&err, "bro\u{FFFD}ken.jpg").contains("not an image"), "{err}");
    assert_eq!(summary(&err), [1, 0, 0, 1, 1, 0]);
    // The output name is the input's, byte for byte (results mirror the input's path exactly, so
    // two names that differ only in undecodable bytes never collide).
    let written: Vec<std::ffi::OsString> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written, [name]);
    assert_eq!(rgb(&out.path().join(name)).dimensions(), (512, 512));
    assert_eq!(snapshot(dir.path()), before);
}

/// Runs `restore` as root without the capabilities that bypass file permissions (setpriv drops
/// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set), for the permission checks root
/// would otherwise skip. It stays root, so it can still read a build tree in a private folder (a
/// fresh clone under `mktemp -d` is 0700, which user nobody could not enter).
fn without_override(inputs: &[&OsStr], out: &Path) -> Option<Output> {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().find(|p| Path::new(p).exists())?;
    let mut cmd = Command::new(setpriv);
    cmd.arg("--bounding-set=-dac_override,-dac_read_search").arg(bin());
    restore_args(&mut cmd, inputs, out);
    Some(cmd.output().unwrap())
}

#[test]
fn a_read_only_output_folder_fails_each_photo_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for d in [dir.path(), out.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let photo = dir.path().join("portrait.png");
    std::fs::copy(repo_root().join("../shared/photos/astronaut.png"), &photo).unwrap();
    std::fs::write(dir.path().join("landscape.png"), png(&sky(320, 240))).unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::set_permissions(f.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let before = snapshot(dir.path());
    std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o555)).unwrap();

    // Root writes into a 0555 folder anyway: then the run drops root's permission override (setpriv).
    let probe = out.path().join("probe");
    let root = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(&probe);
    let run = if root {
        match without_override(&[dir.path().as_os_str()], out.path()) {
            Some(run) => run,
            None => panic!("running as root without setpriv: cannot make a folder read-only"),
        }
    } else {
        restore(&[dir.path().as_os_str()], out.path())
    };
    let err = stderr(&run);
    eprintln!("--- read-only output (as {}) ---\n{err}", if root { "root without CAP_DAC_OVERRIDE via setpriv" } else { "this user" });
    no_panic(&err);
    assert_eq!(run.status.code(), Some(1), "{err}");
    for name in ["portrait.png", "landscape.png"] {
        let line = line_for(&err, name);
        assert!(line.starts_with("error: ") && line.contains("could not write") && line.contains("Permission denied"), "{line}");
    }
    assert_eq!(summary(&err), [0, 0, 0, 2, 0, 0]);
    std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(names(out.path()).is_empty(), "nothing written: {:?}", names(out.path()));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_full_disk_fails_the_big_photo_and_the_others_complete() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // The full-size portrait encodes to more PNG than the limit; the small one and the landscape to far less.
    std::fs::copy(repo_root().join("../shared/photos/astronaut.png"), dir.path().join("big.png")).unwrap();
    let small = image::imageops::resize(&astronaut(), 192, 192, image::imageops::FilterType::Triangle);
    std::fs::write(dir.path().join("small.png"), png(&small)).unwrap();
    std::fs::write(dir.path().join("landscape.png"), png(&sky(320, 240))).unwrap();
    let before = snapshot(dir.path());

    // A 200 KiB file-size limit (ulimit -f counts 512-byte blocks): writing past it fails with
    // EFBIG, as on a full disk. The CLI must not die of SIGXFSZ: the limit is set plainly.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -f 400 && exec \"$@\"", "sh"]).arg(bin());
    restore_args(&mut cmd, &[dir.path().as_os_str()], out.path());
    let run = cmd.output().unwrap();
    let err = stderr(&run);
    eprintln!("--- file-size limit ---\n{err}");
    no_panic(&err);
    assert_eq!(run.status.code(), Some(1), "a per-photo failure, not a crash: {:?}\n{err}", run.status);
    let line = line_for(&err, "big.png");
    assert!(line.contains("could not write") && line.contains("File too large"), "{line}");
    assert_eq!(summary(&err), [1, 1, 0, 1, 1, 0], "{err}");
    assert_eq!(names(out.path()), ["landscape.png", "small.png"], "no partial big.png");
    assert_eq!(rgb(&out.path().join("small.png")).dimensions(), (192, 192));
    assert_eq!(snapshot(dir.path()), before);
}
