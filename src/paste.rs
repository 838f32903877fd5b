//! Paste-back: restored face crops return into the photo through the inverse of their alignment,
//! with a feathered mask, as GPEN's `FaceEnhancement.process` does (gpen.md §4.3, §4.7):
//! optional small-face smoothing, blending with the original crop by `strength` (GPEN's `alpha`),
//! the per-pixel "largest mask wins" rule where faces overlap, then one linear blend over the photo.
//!
//! GPEN shapes its mask with a face-parsing network (ParseNet, 469 GFLOP per face). Without it we use
//! the shape of GPEN's rectangle mask (`FaceEnhancement.mask`: border zeroed, blurred twice with a
//! Gaussian), widened because the rectangle, unlike a parsed face, cuts through hair and background:
//! a 40 px border (at 512) and sigma 8 instead of 26 px and sigma 4, so the feather is about twice as
//! wide and still reaches zero (< 3e-4) at the crop edge. Both scale with the crop size.

use crate::align::Affine2;
use image::RgbImage;

/// A restored face and where it came from.
pub struct PasteFace<'a> {
    /// The restored crop (S x S).
    pub restored: &'a RgbImage,
    /// The aligned crop that went into the restorer (S x S), blended back by `1 - strength`.
    pub aligned: &'a RgbImage,
    /// Photo -> crop similarity transform, as produced by alignment.
    pub tfm: Affine2,
    /// Shorter side of the detected face box in photo pixels (GPEN smooths faces under 100 px).
    pub box_side: f32,
}

/// Below this detected box side (photo pixels) GPEN smooths the restored face with a 3x3 kernel.
pub const SMALL_FACE_PX: f32 = 100.0;

/// The feathered mask for an S x S crop: 1 in the middle, 0 at the border.
pub fn crop_mask(size: u32) -> Vec<f32> {
    let s = size as usize;
    let scale = size as f64 / 512.0;
    let border = (40.0 * scale).round() as usize;
    let mut mask = vec![0f32; s * s];
    for y in border..s.saturating_sub(border) {
        for x in border..s.saturating_sub(border) {
            mask[y * s + x] = 1.0;
        }
    }
    let kernel = gaussian_kernel(8.0 * scale, (50.0 * scale).round().max(1.0) as usize);
    for _ in 0..2 {
        mask = blur_separable(&mask, s, s, &kernel);
    }
    mask
}

fn gaussian_kernel(sigma: f64, radius: usize) -> Vec<f32> {
    let k: Vec<f64> = (0..=2 * radius).map(|i| (-((i as f64 - radius as f64).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let sum: f64 = k.iter().sum();
    k.iter().map(|v| (v / sum) as f32).collect()
}

/// OpenCV's default border, reflect-101: -1 -> 1, n -> n - 2.
fn reflect101(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut i = i.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    i as usize
}

fn blur_separable(src: &[f32], w: usize, h: usize, kernel: &[f32]) -> Vec<f32> {
    let r = (kernel.len() / 2) as isize;
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = kernel.iter().enumerate().map(|(k, kv)| kv * src[y * w + reflect101(x as isize + k as isize - r, w)]).sum();
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = kernel.iter().enumerate().map(|(k, kv)| kv * tmp[reflect101(y as isize + k as isize - r, h) * w + x]).sum();
        }
    }
    out
}

/// GPEN's small-face smoothing: `filter2D` with [[1,2,1],[2,4,2],[1,2,1]]/16, reflect-101 border.
fn smooth3x3(img: &RgbImage) -> Vec<[f32; 3]> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let k = [1.0f32, 2.0, 1.0];
    let mut out = vec![[0f32; 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for (dy, ky) in k.iter().enumerate() {
                for (dx, kx) in k.iter().enumerate() {
                    let sx = reflect101(x as isize + dx as isize - 1, w);
                    let sy = reflect101(y as isize + dy as isize - 1, h);
                    let p = img.get_pixel(sx as u32, sy as u32);
                    for c in 0..3 {
                        acc[c] += ky * kx * p[c] as f32 / 16.0;
                    }
                }
            }
            out[y * w + x] = acc;
        }
    }
    out
}

/// Bilinear sample of an S x S plane at (u, v) with zeros outside, like `warpAffine`'s constant border.
fn sample<const C: usize>(plane: &[[f32; C]], s: usize, u: f64, v: f64) -> [f32; C] {
    let (x0, y0) = (u.floor(), v.floor());
    let (fx, fy) = ((u - x0) as f32, (v - y0) as f32);
    let mut out = [0f32; C];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (x, y) = (x0 as isize + dx, y0 as isize + dy);
            if x < 0 || y < 0 || x >= s as isize || y >= s as isize {
                continue;
            }
            let p = &plane[y as usize * s + x as usize];
            for c in 0..C {
                out[c] += wx * wy * p[c];
            }
        }
    }
    out
}

/// Pastes every face into `photo`. `strength` in [0, 1] blends the restored face with the original
/// crop (1 = fully restored). `mask` is [`crop_mask`] of the crop size (computed once per run).
pub fn paste_faces(photo: &RgbImage, faces: &[PasteFace], strength: f32, mask: &[f32]) -> RgbImage {
    let (w, h) = (photo.width() as usize, photo.height() as usize);
    let mut full_mask = vec![0f32; w * h];
    let mut full_img = vec![[0f32; 3]; w * h];
    let alpha = strength.clamp(0.0, 1.0);
    let mask_plane: Vec<[f32; 1]> = mask.iter().map(|&m| [m]).collect();
    for face in faces {
        let s = face.restored.width() as usize;
        let restored = if face.box_side < SMALL_FACE_PX {
            smooth3x3(face.restored)
        } else {
            face.restored.pixels().map(|p| [p[0] as f32, p[1] as f32, p[2] as f32]).collect()
        };
        let blended: Vec<[f32; 3]> = restored
            .iter()
            .zip(face.aligned.pixels())
            .map(|(r, a)| std::array::from_fn(|c| alpha * r[c] + (1.0 - alpha) * a[c] as f32))
            .collect();
        // The photo region the crop covers: its corners through the inverse transform. Alignment
        // only produces invertible transforms; anything else has nowhere to go.
        let Some(inv) = face.tfm.inverse() else { continue };
        let corners = [[0.0, 0.0], [s as f64, 0.0], [0.0, s as f64], [s as f64, s as f64]].map(|c| inv.apply(c));
        let (xs, ys) = (corners.map(|c| c[0]), corners.map(|c| c[1]));
        let x0 = xs.iter().copied().fold(f64::INFINITY, f64::min).floor().max(0.0) as usize;
        let x1 = (xs.iter().copied().fold(f64::NEG_INFINITY, f64::max).ceil().max(0.0) as usize + 1).min(w);
        let y0 = ys.iter().copied().fold(f64::INFINITY, f64::min).floor().max(0.0) as usize;
        let y1 = (ys.iter().copied().fold(f64::NEG_INFINITY, f64::max).ceil().max(0.0) as usize + 1).min(h);
        let t = &face.tfm.m;
        for y in y0..y1 {
            for x in x0..x1 {
                let (xf, yf) = (x as f64, y as f64);
                let u = t[0][0] * xf + t[0][1] * yf + t[0][2];
                let v = t[1][0] * xf + t[1][1] * yf + t[1][2];
                let m = sample(&mask_plane, s, u, v)[0];
                let i = y * w + x;
                if m > full_mask[i] {
                    full_mask[i] = m;
                    full_img[i] = sample(&blended, s, u, v);
                }
            }
        }
    }
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        let (m, p) = (full_mask[i], photo.get_pixel(x, y));
        image::Rgb(std::array::from_fn(|c| (p[c] as f32 * (1.0 - m) + full_img[i][c] * m).round().clamp(0.0, 255.0) as u8))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_is_one_inside_and_zero_at_the_edge() {
        let m = crop_mask(512);
        assert!(m[256 * 512 + 256] > 0.999);
        assert!(m[0] < 1e-3 && m[511 * 512 + 511] < 1e-3);
        // Monotone falloff from the centre to the border along a row.
        let row: Vec<f32> = (0..256).map(|x| m[256 * 512 + x]).collect();
        assert!(row.windows(2).all(|p| p[1] >= p[0] - 1e-6));
    }

    #[test]
    fn reflect101_matches_opencv() {
        assert_eq!([-2, -1, 0, 4, 5, 6].map(|i| reflect101(i, 5)), [2, 1, 0, 4, 3, 2]);
    }

    #[test]
    fn overlapping_faces_take_the_larger_mask_and_strength_zero_changes_nothing() {
        let photo = RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 128]));
        let white = RgbImage::from_pixel(32, 32, image::Rgb([255, 255, 255]));
        let black = RgbImage::from_pixel(32, 32, image::Rgb([0, 0, 0]));
        let mask = crop_mask(32);
        let identity = Affine2::IDENTITY;
        let shifted = Affine2 { m: [[1.0, 0.0, -16.0], [0.0, 1.0, 0.0]] }; // crop origin at photo x = 16
        let faces = [
            PasteFace { restored: &white, aligned: &white, tfm: identity, box_side: 200.0 },
            PasteFace { restored: &black, aligned: &black, tfm: shifted, box_side: 200.0 },
        ];
        let out = paste_faces(&photo, &faces, 1.0, &mask);
        // (16, 16) is the white crop's centre and the black crop's edge: white wins there.
        assert!(out.get_pixel(16, 16)[0] > 240);
        // (32, 16) is the black crop's centre and the white crop's outside: black.
        assert!(out.get_pixel(32, 16)[0] < 15);
        // Far from both crops the photo is untouched.
        assert_eq!(out.get_pixel(5, 60), photo.get_pixel(5, 60));
        let same = PasteFace { restored: &black, aligned: &white, tfm: identity, box_side: 200.0 };
        let out = paste_faces(&photo, &[same], 0.0, &mask);
        assert!(out.get_pixel(16, 16)[0] > 240, "strength 0 keeps the original crop");
    }
}
