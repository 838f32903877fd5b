//! Benchmark inputs made from real photos: large JPEGs like the scans and phone photos people bring.

use crate::photo::ReadLimits;
use anyhow::Context;
use image::RgbImage;
use std::path::{Path, PathBuf};

/// `n` JPEGs (quality 90) of 6 to 13 megapixels, evenly spread, each made by upscaling the next of
/// `sources` (Lanczos) — mirrored on every other round and cropped by a few pixels so that no two are
/// identical.
pub fn make_large_photos(sources: &[PathBuf], n: usize, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(!sources.is_empty(), "no source images for the synthetic photos");
    let images: Vec<RgbImage> = sources
        .iter()
        .map(|p| crate::photo::read_photo(p, &ReadLimits::default()).map(|p| p.pixels).with_context(|| format!("reading {}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(dir)?;
    (0..n)
        .map(|i| {
            let src = &images[i % images.len()];
            let target_mp = if n > 1 { 6.0 + 7.0 * i as f64 / (n - 1) as f64 } else { 9.0 };
            let scale = (target_mp * 1e6 / (src.width() as f64 * src.height() as f64)).sqrt();
            let (w, h) = ((src.width() as f64 * scale) as u32, (src.height() as f64 * scale) as u32);
            let mut big = image::imageops::resize(src, w + 8, h + 8, image::imageops::FilterType::Lanczos3);
            if (i / images.len()) % 2 == 1 {
                big = image::imageops::flip_horizontal(&big);
            }
            let shift = (i % 8) as u32;
            let photo = image::imageops::crop_imm(&big, shift, 8 - shift, w, h).to_image();
            let path = dir.join(format!("large{i:02}.jpg"));
            let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
            image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90).encode_image(&photo)?;
            Ok(path)
        })
        .collect()
}
