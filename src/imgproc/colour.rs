//! Colour conversions for GPEN's colorization: grey inputs, and OpenCV's 8-bit YUV (BT.601:
//! `Y = 0.299 R + 0.587 G + 0.114 B`, `U = 0.492 (B − Y) + 128`, `V = 0.877 (R − Y) + 128`),
//! used to keep an input's luminance under another image's colours. OpenCV computes these in 14-bit
//! fixed point; we compute them in f32 and round (no golden measures colorization, so the last level
//! of agreement is not claimed).

use image::RgbImage;

fn luma(p: [u8; 3]) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// The image in grey, three equal channels.
pub fn grey(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let y = to_u8(luma(p.0));
        p.0 = [y, y, y];
    }
    out
}

/// `colours` with the luminance (Y of YUV) of `luminance`: `cvtColor` both to YUV, take Y from the
/// first and U, V from the second, back to RGB (GPEN's `FaceColorization.post_process`).
pub fn keep_luminance(luminance: &RgbImage, colours: &RgbImage) -> RgbImage {
    assert_eq!(luminance.dimensions(), colours.dimensions(), "keep_luminance needs images of one size");
    let mut out = colours.clone();
    for (o, l) in out.pixels_mut().zip(luminance.pixels()) {
        let c = o.0;
        let y_c = luma(c);
        // U and V are stored as 8-bit values, as OpenCV's 8-bit YUV image holds them.
        let u = to_u8(0.492 * (c[2] as f32 - y_c) + 128.0) as f32 - 128.0;
        let v = to_u8(0.877 * (c[0] as f32 - y_c) + 128.0) as f32 - 128.0;
        let y = to_u8(luma(l.0)) as f32;
        o.0 = [to_u8(y + 1.140 * v), to_u8(y - 0.395 * u - 0.581 * v), to_u8(y + 2.032 * u)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_keeps_the_luminance_and_colours_come_back_from_the_other_image() {
        let a = RgbImage::from_fn(4, 1, |x, _| image::Rgb([(x * 60) as u8, 100, 200]));
        let g = grey(&a);
        assert!(g.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        // The colours of `a` with the luminance of its own grey version: `a` again (within rounding).
        let back = keep_luminance(&g, &a);
        for (p, q) in back.pixels().zip(a.pixels()) {
            assert!(p.0.iter().zip(q.0).all(|(x, y)| x.abs_diff(y) <= 2), "{p:?} vs {q:?}");
        }
        // A grey image keeps its grey under grey colours.
        let flat = RgbImage::from_pixel(2, 2, image::Rgb([90, 90, 90]));
        assert_eq!(keep_luminance(&flat, &flat), flat);
    }
}
