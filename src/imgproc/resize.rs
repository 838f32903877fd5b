//! `cv2.resize(..., interpolation=INTER_LINEAR)` as OpenCV 5.0 computes it.
//!
//! Both element types share OpenCV's coordinate mapping: per axis the source coordinate of output
//! index `d` is `(d + 0.5) * scale - 0.5` (f64, rounded to f32), `scale = 1 / (dst / src)`; its
//! floor is the first tap, the remainder `f` the second tap's weight. Columns past either edge are
//! clamped to the edge pixel with weight 0; rows are not clamped, their indices are (so the top
//! rows keep weights `(1 - f, f)` on one and the same row).
//!
//! 8-bit images are resized in fixed point: weights `round((1 - f) * 2048)` and `round(f * 2048)`,
//! a horizontal pass in integers (`r = a0 * p0 + a1 * p1`), and the vertical pass as the x86 SIMD
//! kernel runs it, `(((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2`, for every value
//! of a row. (OpenCV's scalar kernel `(b0 * r0 + b1 * r1 + 2^21) >> 22` rounds differently; giving
//! it the values left over after the 16- and 8-byte vector loops instead mismatched cv2 on the
//! last value of some rows of golden/pipeline's solvay upscale, so cv2 5.0 does not use it there.) Exact 2x downscaling (OpenCV switches to INTER_AREA there)
//! gives the same `(a + b + c + d + 2) >> 2` either way.

use image::RgbImage;

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// One output coordinate: the two source indices and the weight of the second.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    i0: usize,
    i1: usize,
    f: f32,
}

/// Source taps of every output index along one axis. `clamp_weight` is OpenCV's column rule
/// (past an edge: the edge pixel with weight 0); rows only clamp their indices.
fn taps(src: usize, dst: usize, clamp_weight: bool) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let x = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = x.floor();
            let mut f = x - s;
            let mut s = s as i64;
            if clamp_weight {
                if s < 0 {
                    s = 0;
                    f = 0.0;
                }
                if s >= src as i64 - 1 {
                    s = src as i64 - 1;
                    f = 0.0;
                }
            }
            let clip = |i: i64| i.clamp(0, src as i64 - 1) as usize;
            Tap { i0: clip(s), i1: clip(s + 1), f }
        })
        .collect()
}

/// The fixed-point weights of a tap, as OpenCV's `saturate_cast<short>(w * 2048)` (round half to even).
fn fixed(f: f32) -> (i32, i32) {
    (((1.0 - f) * COEF_SCALE).round_ties_even() as i32, (f * COEF_SCALE).round_ties_even() as i32)
}

/// Resizes an interleaved 8-bit image of `channels` (1..=4) channels to `new_w` x `new_h`,
/// bit for bit as OpenCV does (see the module comment). Panics if the buffer does not hold
/// `width * height * channels` bytes or a size is zero: both are programming errors.
pub fn resize_linear_u8(src: &[u8], width: u32, height: u32, channels: usize, new_w: u32, new_h: u32) -> Vec<u8> {
    let (w, h, dw, dh, cn) = (width as usize, height as usize, new_w as usize, new_h as usize, channels);
    assert!((1..=4).contains(&cn), "resize_linear_u8: {cn} channels (1 to 4 supported)");
    assert!(w > 0 && h > 0 && dw > 0 && dh > 0, "resize_linear_u8: empty size");
    assert_eq!(src.len(), w * h * cn, "resize_linear_u8: buffer is not {w}x{h}x{cn}");
    if (w, h) == (dw, dh) {
        return src.to_vec();
    }
    let xt: Vec<(usize, usize, i32, i32)> = taps(w, dw, true)
        .into_iter()
        .map(|t| {
            let (a0, a1) = fixed(t.f);
            (t.i0 * cn, t.i1 * cn, a0, a1)
        })
        .collect();
    let yt = taps(h, dh, false);
    let row_len = dw * cn;
    // Horizontal pass of one source row, cached: consecutive output rows share source rows.
    let hpass = |y: usize, out: &mut Vec<i32>| {
        out.clear();
        let row = &src[y * w * cn..(y + 1) * w * cn];
        for &(o0, o1, a0, a1) in &xt {
            for c in 0..cn {
                out.push(a0 * row[o0 + c] as i32 + a1 * row[o1 + c] as i32);
            }
        }
    };
    let mut dst = Vec::with_capacity(dh * row_len);
    let (mut r0, mut r1) = (Vec::with_capacity(row_len), Vec::with_capacity(row_len));
    let (mut y0, mut y1) = (usize::MAX, usize::MAX);
    for t in &yt {
        if t.i0 != y0 {
            if t.i0 == y1 {
                std::mem::swap(&mut r0, &mut r1);
                y1 = usize::MAX;
            } else {
                hpass(t.i0, &mut r0);
            }
            y0 = t.i0;
        }
        if t.i1 != y1 {
            hpass(t.i1, &mut r1);
            y1 = t.i1;
        }
        let (b0, b1) = fixed(t.f);
        for x in 0..row_len {
            let v = (((b0 * (r0[x] >> 4)) >> 16) + ((b1 * (r1[x] >> 4)) >> 16) + 2) >> 2;
            dst.push(v.clamp(0, 255) as u8);
        }
    }
    dst
}

/// [`resize_linear_u8`] for an RGB image.
pub fn resize_linear_rgb(img: &RgbImage, new_w: u32, new_h: u32) -> RgbImage {
    let data = resize_linear_u8(img.as_raw(), img.width(), img.height(), 3, new_w, new_h);
    RgbImage::from_raw(new_w, new_h, data).expect("resize output has the requested size")
}

/// Resizes a single-channel f32 map (row-major `width * height`) with OpenCV's float
/// INTER_LINEAR: the same taps as the 8-bit path, float weights `(1 - f, f)`, no rounding.
pub fn resize_linear_f32(src: &[f32], width: u32, height: u32, new_w: u32, new_h: u32) -> Vec<f32> {
    let (w, h, dw, dh) = (width as usize, height as usize, new_w as usize, new_h as usize);
    assert!(w > 0 && h > 0 && dw > 0 && dh > 0, "resize_linear_f32: empty size");
    assert_eq!(src.len(), w * h, "resize_linear_f32: buffer is not {w}x{h}");
    if (w, h) == (dw, dh) {
        return src.to_vec();
    }
    let xt = taps(w, dw, true);
    let hpass = |y: usize| -> Vec<f32> {
        let row = &src[y * w..(y + 1) * w];
        xt.iter().map(|t| row[t.i0] * (1.0 - t.f) + row[t.i1] * t.f).collect()
    };
    let mut dst = Vec::with_capacity(dw * dh);
    for t in taps(h, dh, false) {
        let (r0, r1) = (hpass(t.i0), hpass(t.i1));
        let (b0, b1) = (1.0 - t.f, t.f);
        dst.extend(r0.iter().zip(&r1).map(|(a, b)| a * b0 + b * b1));
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy() {
        let src: Vec<u8> = (0..5 * 3 * 2).map(|v| (v * 7) as u8).collect();
        assert_eq!(resize_linear_u8(&src, 5, 3, 2, 5, 3), src);
        let f: Vec<f32> = (0..6).map(|v| v as f32 * 0.3).collect();
        assert_eq!(resize_linear_f32(&f, 3, 2, 3, 2), f);
    }

    #[test]
    fn halving_averages_two_by_two_blocks_with_rounding() {
        // 4x2 grey -> 2x1: (1+2+5+6+2)>>2 = 4 (3.5 rounds up), (3+4+7+8+2)>>2 = 6.
        let src = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(resize_linear_u8(&src, 4, 2, 1, 2, 1), vec![4, 6]);
        // Channels stay separate.
        let rgb: Vec<u8> = src.iter().flat_map(|&v| [v, 10 * v, 255 - v]).collect();
        assert_eq!(resize_linear_u8(&rgb, 4, 2, 3, 2, 1), vec![4, 35, 252, 6, 55, 250]);
    }

    #[test]
    fn doubling_uses_quarter_weights_and_clamps_at_the_edges() {
        // 2x1 -> 4x1: source x = -0.25 (clamped to pixel 0), 0.25, 0.75, 1.25 (clamped to pixel 1).
        let src = [0u8, 100];
        assert_eq!(resize_linear_u8(&src, 2, 1, 1, 4, 1), vec![0, 25, 75, 100]);
        let f = resize_linear_f32(&[0.0, 1.0], 2, 1, 4, 1);
        assert_eq!(f, vec![0.0, 0.25, 0.75, 1.0]);
        // Vertically as well: rows keep their weights on the edge row, which sums to the same value.
        let col = resize_linear_u8(&[0u8, 100], 1, 2, 1, 1, 4);
        assert_eq!(col, vec![0, 25, 75, 100]);
    }

    #[test]
    fn taps_follow_the_half_pixel_mapping() {
        let t = taps(3, 5, true);
        // (d + 0.5) * 0.6 - 0.5: -0.2 -> clamped, 0.4, 1.0, 1.6, 2.2 -> clamped to the last pixel.
        assert_eq!((t[0].i0, t[0].f), (0, 0.0));
        assert_eq!((t[1].i0, t[1].i1), (0, 1));
        assert!((t[1].f - 0.4).abs() < 1e-6);
        assert_eq!((t[2].i0, t[2].f), (1, 0.0));
        assert_eq!((t[4].i0, t[4].i1, t[4].f), (2, 2, 0.0));
        // Rows: the index is clipped, the weight is kept.
        let r = taps(3, 5, false);
        assert_eq!((r[0].i0, r[0].i1), (0, 0));
        assert!((r[0].f - 0.8).abs() < 1e-6);
    }

    #[test]
    fn fixed_point_weights_sum_to_2048() {
        for k in 0..1000 {
            let (a, b) = fixed(k as f32 / 1000.0);
            assert_eq!(a + b, 2048, "f = {}", k as f32 / 1000.0);
        }
    }
}
