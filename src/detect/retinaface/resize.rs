//! The network input `detect()` builds: the photo as float32 BGR, shrunk by
//! `cv2.resize(img, (0, 0), fx=ss, fy=ss)` (bilinear, float32) when its longer side exceeds 1500
//! pixels, minus the BGR means. The output size is `round(W * ss)` x `round(H * ss)` and the
//! source position of output `d` is `(d + 0.5) / ss - 0.5` with `1 / ss`, not the ratio of the
//! sizes (which moves pixels by up to 36 levels on the golden photo).
//!
//! OpenCV hands float32 `INTER_LINEAR` to IPP, which keeps the positions and weights at full
//! precision; OpenCV's own code rounds the position to f32 first (6e-5 px at x ~ 2000, up to
//! 4e-3 levels on sharp edges). So positions, weights and both passes are computed in f64 here and
//! each pass rounded to f32: within 1 ulp (1.5e-5) of the golden on every pixel.

use image::RgbImage;

/// `detect()`'s threshold for resizing and the longer side it resizes to.
pub const MAX_SIDE: u32 = 1500;
pub const TARGET_SIDE: f64 = 1000.0;
/// Subtracted from the B, G, R channels (no division by a standard deviation).
pub const BGR_MEANS: [f32; 3] = [104.0, 117.0, 123.0];

/// An image as f32 in HWC order, channels B, G, R.
#[derive(Debug, Clone, PartialEq)]
pub struct Bgr {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Bgr {
    /// The 8-bit RGB photo as float32 BGR (what `cv2.imread` and `np.float32` give the reference).
    pub fn from_rgb(image: &RgbImage) -> Self {
        let data = image.pixels().flat_map(|p| [p[2] as f32, p[1] as f32, p[0] as f32]).collect();
        Bgr { width: image.width() as usize, height: image.height() as usize, data }
    }

    pub fn subtract_means(&mut self) {
        for px in self.data.chunks_exact_mut(3) {
            for (v, m) in px.iter_mut().zip(BGR_MEANS) {
                *v -= m;
            }
        }
    }
}

/// `ss`: `1000 / max(H, W)` for photos with a side over 1500 pixels, else 1.
pub fn scale_for(width: u32, height: u32) -> f64 {
    let side = width.max(height);
    if side > MAX_SIDE { TARGET_SIDE / side as f64 } else { 1.0 }
}

/// One output coordinate's two source taps and weights.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: f64,
    w1: f64,
}

/// Taps along one axis. Positions outside the pixel centres take the edge pixel (OpenCV's and
/// IPP's replicated border).
fn taps(src: usize, dst: usize, inv_scale: f64) -> Vec<Tap> {
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let pos = (d as f64 + 0.5) * inv_scale - 0.5;
            let s = pos.floor() as i64;
            let frac = pos - s as f64;
            let clamp = |i: i64| i.clamp(0, last) as usize;
            Tap { i0: clamp(s), i1: clamp(s + 1), w0: 1.0 - frac, w1: frac }
        })
        .collect()
}

/// `cv2.resize(src, (0, 0), fx=scale, fy=scale, interpolation=INTER_LINEAR)` on a float32
/// 3-channel image: a horizontal pass per source row, then a vertical blend of two rows, each
/// `a * w0 + b * w1` in f64, rounded to f32 after each pass.
pub fn resize_linear(src: &Bgr, scale: f64) -> Bgr {
    // `saturate_cast<int>(double)` rounds half to even.
    let width = (src.width as f64 * scale).round_ties_even() as usize;
    let height = (src.height as f64 * scale).round_ties_even() as usize;
    if width == 0 || height == 0 || src.width == 0 || src.height == 0 {
        return Bgr { width, height, data: vec![0.0; width * height * 3] };
    }
    let inv = 1.0 / scale;
    let xs = taps(src.width, width, inv);
    let ys = taps(src.height, height, inv);
    let row_len = width * 3;
    let horizontal = |row: usize, out: &mut Vec<f32>| {
        let line = &src.data[row * src.width * 3..(row + 1) * src.width * 3];
        out.clear();
        for t in &xs {
            for c in 0..3 {
                out.push((line[t.i0 * 3 + c] as f64 * t.w0 + line[t.i1 * 3 + c] as f64 * t.w1) as f32);
            }
        }
    };
    let (mut r0, mut r1) = (Vec::with_capacity(row_len), Vec::with_capacity(row_len));
    let mut rows_in = (usize::MAX, usize::MAX);
    let mut data = Vec::with_capacity(height * row_len);
    for t in &ys {
        if rows_in.0 != t.i0 {
            horizontal(t.i0, &mut r0);
        }
        if rows_in.1 != t.i1 {
            horizontal(t.i1, &mut r1);
        }
        rows_in = (t.i0, t.i1);
        data.extend(r0.iter().zip(&r1).map(|(&a, &b)| (a as f64 * t.w0 + b as f64 * t.w1) as f32));
    }
    Bgr { width, height, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: usize, height: usize) -> Bgr {
        let data = (0..height).flat_map(|y| (0..width).flat_map(move |x| [x as f32, y as f32, (x + y) as f32])).collect();
        Bgr { width, height, data }
    }

    #[test]
    fn a_linear_ramp_is_sampled_at_the_pixel_centres() {
        let src = ramp(20, 10);
        let out = resize_linear(&src, 0.5);
        assert_eq!((out.width, out.height), (10, 5));
        // Output column d samples source x = 2d + 0.5.
        for (d, px) in out.data.chunks_exact(3).take(10).enumerate() {
            assert_eq!(px, [2.0 * d as f32 + 0.5, 0.5, 2.0 * d as f32 + 1.0]);
        }
    }

    #[test]
    fn sizes_round_half_to_even_and_edges_clamp() {
        // 5 * 0.5 = 2.5 -> 2 (half to even); 7 * 0.5 = 3.5 -> 4.
        let out = resize_linear(&ramp(5, 7), 0.5);
        assert_eq!((out.width, out.height), (2, 4));
        // Upscaling: the first and last outputs fall outside the pixel centres and clamp.
        let out = resize_linear(&ramp(2, 2), 2.0);
        let xs: Vec<f32> = out.data.chunks_exact(3).take(4).map(|p| p[0]).collect();
        assert_eq!(xs, [0.0, 0.25, 0.75, 1.0]);
        let ys: Vec<f32> = out.data.chunks_exact(3).step_by(4).map(|p| p[1]).collect();
        assert_eq!(ys, [0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn rgb_becomes_bgr_minus_the_means() {
        let img = RgbImage::from_raw(1, 1, vec![200, 100, 50]).unwrap();
        let mut bgr = Bgr::from_rgb(&img);
        assert_eq!(bgr.data, [50.0, 100.0, 200.0]);
        bgr.subtract_means();
        assert_eq!(bgr.data, [-54.0, -17.0, 77.0]);
    }

    #[test]
    fn only_photos_over_1500_pixels_are_shrunk() {
        assert_eq!(scale_for(1500, 800), 1.0);
        assert_eq!(scale_for(1992, 852), 1000.0 / 1992.0);
        assert_eq!(scale_for(700, 2000), 0.5);
    }
}
