//! GPEN's soft paste mask from a parser mask: `FaceEnhancement.mask_postprocess` — a `thres`-px
//! border set to 0, then `cv2.GaussianBlur(mask, (101, 101), 4)` twice on float64 (OpenCV's
//! default border, reflect-101), returned as float32.

use image::GrayImage;

/// `mask_postprocess`'s default border width.
pub const MASK_BORDER: usize = 26;
/// The Gaussian's size and sigma in `mask_postprocess`.
pub const BLUR_KSIZE: usize = 101;
pub const BLUR_SIGMA: f64 = 4.0;

/// A parser mask (0/255) as the `mask / 255.` the reference feeds `mask_postprocess`.
pub fn mask_to_unit(mask: &GrayImage) -> Vec<f32> {
    mask.as_raw().iter().map(|&v| (v as f64 / 255.0) as f32).collect()
}

/// `mask_postprocess(mask, thres)` on a row-major `width * height` map. The arithmetic is f64 as
/// in the reference; only the result is rounded to f32.
pub fn mask_postprocess(mask: &[f32], width: usize, height: usize, thres: usize) -> Vec<f32> {
    assert_eq!(mask.len(), width * height, "mask_postprocess: buffer is not {width}x{height}");
    let mut m: Vec<f64> = mask.iter().map(|&v| v as f64).collect();
    // numpy's `m[:t] = 0; m[-t:] = 0` (and the same for columns) clear min(t, n) lines per side;
    // `m[-0:]` is the whole array, so a zero border clears everything, as in the reference.
    let (ty, tx) = if thres == 0 { (height, width) } else { (thres.min(height), thres.min(width)) };
    for y in 0..height {
        let row = &mut m[y * width..(y + 1) * width];
        if y < ty || y >= height - ty {
            row.fill(0.0);
        } else {
            row[..tx].fill(0.0);
            row[width - tx..].fill(0.0);
        }
    }
    let kernel = gaussian_kernel(BLUR_KSIZE, BLUR_SIGMA);
    let m = gaussian_blur(&m, width, height, &kernel);
    let m = gaussian_blur(&m, width, height, &kernel);
    m.into_iter().map(|v| v as f32).collect()
}

/// `cv::getGaussianKernel(n, sigma, CV_64F)` for sigma > 0: `exp(-x^2 / (2 sigma^2))` at
/// `x = i - (n - 1) / 2`, in f64, divided by the sum (as a multiplication by its reciprocal).
pub fn gaussian_kernel(n: usize, sigma: f64) -> Vec<f64> {
    let scale2x = -0.5 / (sigma * sigma);
    let mut k: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - (n as f64 - 1.0) * 0.5;
            (scale2x * x * x).exp()
        })
        .collect();
    let inv = 1.0 / k.iter().sum::<f64>();
    k.iter_mut().for_each(|v| *v *= inv);
    k
}

/// OpenCV's `borderInterpolate` for BORDER_REFLECT_101 (`gfedcb|abcdefgh|gfedcba`), repeated for
/// offsets longer than the line.
fn reflect101(mut p: i64, len: i64) -> usize {
    if len == 1 {
        return 0;
    }
    while p < 0 || p >= len {
        p = if p < 0 { -p } else { 2 * (len - 1) - p };
    }
    p as usize
}

/// Separable filtering with `kernel` (odd length, anchored at its centre) along rows, then columns.
fn gaussian_blur(src: &[f64], width: usize, height: usize, kernel: &[f64]) -> Vec<f64> {
    let r = (kernel.len() / 2) as i64;
    // Rows: one bordered copy of the row, then a dot product per pixel.
    let mut tmp = vec![0.0; width * height];
    let mut line = Vec::with_capacity(width + 2 * r as usize);
    for y in 0..height {
        let row = &src[y * width..(y + 1) * width];
        line.clear();
        line.extend((-r..width as i64 + r).map(|x| row[reflect101(x, width as i64)]));
        for (x, out) in tmp[y * width..(y + 1) * width].iter_mut().enumerate() {
            *out = kernel.iter().zip(&line[x..]).map(|(k, v)| k * v).sum();
        }
    }
    // Columns: whole rows at a time, so the inner loop runs over contiguous memory.
    let mut dst = vec![0.0; width * height];
    for y in 0..height {
        let out = &mut dst[y * width..(y + 1) * width];
        for (j, &k) in kernel.iter().enumerate() {
            let sy = reflect101(y as i64 + j as i64 - r, height as i64);
            for (o, &v) in out.iter_mut().zip(&tmp[sy * width..(sy + 1) * width]) {
                *o += k * v;
            }
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel(BLUR_KSIZE, BLUR_SIGMA);
        assert_eq!(k.len(), 101);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!((0..101).all(|i| k[i] == k[100 - i]));
        // Centre weight 1 / (sigma * sqrt(2 pi)) for a kernel that holds nearly all of the mass.
        assert!((k[50] - 1.0 / (4.0 * (2.0 * std::f64::consts::PI).sqrt())).abs() < 1e-12);
    }

    #[test]
    fn reflect101_mirrors_without_repeating_the_edge() {
        let idx: Vec<usize> = (-3..8).map(|p| reflect101(p, 5)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        // Offsets beyond one reflection keep bouncing.
        assert_eq!(reflect101(-9, 5), 1);
        assert_eq!(reflect101(7, 1), 0);
    }

    #[test]
    fn blur_keeps_a_constant_map_and_the_border_is_cleared() {
        let (w, h) = (60, 70);
        let ones = vec![1.0f64; w * h];
        let k = gaussian_kernel(BLUR_KSIZE, BLUR_SIGMA);
        assert!(gaussian_blur(&ones, w, h, &k).iter().all(|v| (v - 1.0).abs() < 1e-12));
        // A border wider than half the map leaves zeros; so does 0 (numpy's `m[-0:]` is everything).
        assert!(mask_postprocess(&vec![1.0; w * h], w, h, 40).iter().all(|&v| v == 0.0));
        assert!(mask_postprocess(&vec![1.0; w * h], w, h, 0).iter().all(|&v| v == 0.0));
        // The default border darkens the corner and leaves the centre at 1.
        let m = mask_postprocess(&vec![1.0; 200 * 200], 200, 200, MASK_BORDER);
        assert!(m[0] < 0.01 && (m[100 * 200 + 100] - 1.0).abs() < 1e-6, "{} {}", m[0], m[100 * 200 + 100]);
    }
}
