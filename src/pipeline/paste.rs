//! Paste-back: restored face crops return into the photo through the inverse of their alignment, in
//! the order and with the 8-bit roundings of GPEN's `FaceEnhancement.process` (gpen.md §4.3, §4.7;
//! golden/pipeline): per face, the small-face smoothing (an 8-bit `filter2D`), the blend with the
//! original crop by `strength` (GPEN's `alpha`, an 8-bit `addWeighted`), the 8-bit warp of the face
//! and the float warp of its mask into the photo, "largest mask wins" where faces overlap; then one
//! float32 blend over the photo, rounded to nearest (`convertScaleAbs`).
//!
//! Each face brings its own mask at the crop size: the face parser's (GPEN's ParseNet mask, see
//! [`crate::mask::parser`]) or, without the parser, [`crop_mask`]: the shape of GPEN's old rectangle mask
//! (`FaceEnhancement.mask`: border zeroed, blurred twice), widened because the rectangle, unlike a
//! parsed face, cuts through hair and background: a 40 px border (at 512) and sigma 8 instead of
//! 26 px and sigma 4, so the feather is about twice as wide and still reaches zero (< 3e-4) at the
//! crop edge. Both scale with the crop size.

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
    /// Where the face is pasted, S x S values in [0, 1] (row-major).
    pub mask: &'a [f32],
    /// The blend with the original crop, in [0, 1] (1 = fully restored): the run's strength, or
    /// this face's own (set in the window, or lowered by the identity guard).
    pub strength: f32,
}

/// The face as it is pasted, at the crop size: the small-face smoothing, then the 8-bit blend with
/// the original crop by `strength` (what the identity guard measures).
pub fn pasted_face(restored: &RgbImage, aligned: &RgbImage, box_side: f32, strength: f32) -> RgbImage {
    let smoothed;
    let restored = if box_side < SMALL_FACE_PX {
        smoothed = smooth3x3(restored);
        &smoothed
    } else {
        restored
    };
    add_weighted(restored, aligned, strength.clamp(0.0, 1.0))
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
pub fn reflect101(i: isize, n: usize) -> usize {
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

/// A float result stored into an 8-bit image as OpenCV's `saturate_cast<uchar>` does: round half to
/// even, clamp to 0..255.
fn to_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

/// GPEN's small-face smoothing: `cv2.filter2D(ef, -1, k)` with k = [[1,2,1],[2,4,2],[1,2,1]]/16 on
/// the 8-bit face, reflect-101 border. The sums are exact in integers; only the division rounds.
pub fn smooth3x3(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let k = [1u32, 2, 1];
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let mut acc = [0u32; 3];
        for (dy, ky) in k.iter().enumerate() {
            for (dx, kx) in k.iter().enumerate() {
                let sx = reflect101(x as isize + dx as isize - 1, w);
                let sy = reflect101(y as isize + dy as isize - 1, h);
                let p = img.get_pixel(sx as u32, sy as u32);
                for c in 0..3 {
                    acc[c] += ky * kx * p[c] as u32;
                }
            }
        }
        image::Rgb(acc.map(|a| to_u8(a as f32 / 16.0)))
    })
}

/// `cv2.addWeighted(restored, alpha, aligned, 1 - alpha, 0)` on 8-bit crops (float32, then rounded).
fn add_weighted(restored: &RgbImage, aligned: &RgbImage, alpha: f32) -> RgbImage {
    let beta = 1.0 - alpha;
    let mut out = restored.clone();
    for (o, a) in out.pixels_mut().zip(aligned.pixels()) {
        for c in 0..3 {
            o[c] = to_u8(o[c] as f32 * alpha + a[c] as f32 * beta);
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

/// Pastes every face into `photo`, in the order given, each at its own strength.
pub fn paste_faces(photo: &RgbImage, faces: &[PasteFace]) -> RgbImage {
    blend(photo, &composite(photo.width(), photo.height(), faces))
}

/// GPEN's one blend of the warped faces over the photo.
pub fn blend(photo: &RgbImage, composite: &Composite) -> RgbImage {
    let w = photo.width() as usize;
    let Composite { mask: full_mask, image: full_img } = composite;
    RgbImage::from_fn(photo.width(), photo.height(), |x, y| {
        let i = y as usize * w + x as usize;
        let (m, p) = (full_mask[i], photo.get_pixel(x, y));
        // numpy's `img * (1 - M) + full_img * M` in float32, then convertScaleAbs.
        image::Rgb(std::array::from_fn(|c| to_u8(p[c] as f32 * (1.0 - m) + full_img[i][c] as f32 * m)))
    })
}

/// The same blend over a 16-bit photo: GPEN's 8-bit faces scaled to 16 bits (× 257), the mask at
/// full precision; where no face reaches (mask 0) the photo's own samples, bit for bit.
pub fn blend16(photo: &crate::photo::Rgb16Image, composite: &Composite) -> crate::photo::Rgb16Image {
    let w = photo.width() as usize;
    let Composite { mask: full_mask, image: full_img } = composite;
    crate::photo::Rgb16Image::from_fn(photo.width(), photo.height(), |x, y| {
        let i = y as usize * w + x as usize;
        let (m, p) = (full_mask[i], photo.get_pixel(x, y));
        if m <= 0.0 {
            return *p;
        }
        let mix = |c: usize| (p[c] as f32 * (1.0 - m) + full_img[i][c] as f32 * 257.0 * m).round().clamp(0.0, 65535.0) as u16;
        image::Rgb([mix(0), mix(1), mix(2)])
    })
}

/// The faces warped into photo space before the final blend: GPEN's `full_mask` and `full_img`.
pub struct Composite {
    /// Per photo pixel, the largest face mask there (0 where no face reaches).
    pub mask: Vec<f32>,
    /// Per photo pixel, the face pixel of the face whose mask won.
    pub image: Vec<[u8; 3]>,
}

/// Warps every face (and its mask) into a `w` x `h` photo, "largest mask wins".
pub fn composite(w: u32, h: u32, faces: &[PasteFace]) -> Composite {
    let (w, h) = (w as usize, h as usize);
    let mut full_mask = vec![0f32; w * h];
    let mut full_img = vec![[0u8; 3]; w * h];
    for face in faces {
        let s = face.restored.width() as usize;
        assert_eq!(face.mask.len(), s * s, "a paste mask has the crop's size");
        let blended = pasted_face(face.restored, face.aligned, face.box_side, face.strength);
        let plane: Vec<[f32; 3]> = blended.pixels().map(|p| p.0.map(f32::from)).collect();
        let mask_plane: Vec<[f32; 1]> = face.mask.iter().map(|&m| [m]).collect();
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
                    // The warped face is an 8-bit image in GPEN (warpAffine of a uint8 crop).
                    full_img[i] = sample(&plane, s, u, v).map(to_u8);
                }
            }
        }
    }
    Composite { mask: full_mask, image: full_img }
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
    fn smoothing_rounds_halves_to_even_as_opencv_stores_them() {
        // A single 8 in a field of 0: the centre gets 8 * 4 / 16 = 2, the edge neighbours
        // 8 * 2 / 16 = 1, the corners 8 / 16 = 0.5 -> 0 (to even); 24 / 16 = 1.5 -> 2.
        let mut img = RgbImage::new(5, 5);
        img.put_pixel(2, 2, image::Rgb([8, 24, 0]));
        let out = smooth3x3(&img);
        assert_eq!(out.get_pixel(2, 2).0, [2, 6, 0]);
        assert_eq!(out.get_pixel(1, 2).0, [1, 3, 0]);
        assert_eq!(out.get_pixel(1, 1).0, [0, 2, 0]);
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
            PasteFace { restored: &white, aligned: &white, tfm: identity, box_side: 200.0, mask: &mask, strength: 1.0 },
            PasteFace { restored: &black, aligned: &black, tfm: shifted, box_side: 200.0, mask: &mask, strength: 1.0 },
        ];
        let out = paste_faces(&photo, &faces);
        // (16, 16) is the white crop's centre and the black crop's edge: white wins there.
        assert!(out.get_pixel(16, 16)[0] > 240);
        // (32, 16) is the black crop's centre and the white crop's outside: black.
        assert!(out.get_pixel(32, 16)[0] < 15);
        // Far from both crops the photo is untouched.
        assert_eq!(out.get_pixel(5, 60), photo.get_pixel(5, 60));
        let same = PasteFace { restored: &black, aligned: &white, tfm: identity, box_side: 200.0, mask: &mask, strength: 0.0 };
        let out = paste_faces(&photo, &[same]);
        assert!(out.get_pixel(16, 16)[0] > 240, "strength 0 keeps the original crop");
    }

    #[test]
    fn a_zero_mask_pastes_nothing() {
        let photo = RgbImage::from_fn(40, 40, |x, y| image::Rgb([(x * 6) as u8, (y * 6) as u8, 7]));
        let black = RgbImage::new(32, 32);
        let zero = vec![0f32; 32 * 32];
        let face = PasteFace { restored: &black, aligned: &black, tfm: Affine2::IDENTITY, box_side: 50.0, mask: &zero, strength: 1.0 };
        assert_eq!(paste_faces(&photo, &[face]), photo);
    }
}
