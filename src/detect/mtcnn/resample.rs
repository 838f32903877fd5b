//! `F.interpolate(mode="area")`, which for 4-D input is adaptive average pooling: output pixel i
//! averages input pixels [floor(i*In/Out), ceil((i+1)*In/Out)). Written out so each R-Net/O-Net crop
//! costs no libtorch call; the sum order and the two divisions make it bit-identical to libtorch's
//! kernel (mtcnn.md §3.3).

/// An RGB image as f32 in HWC order, the values 0..=255 of the 8-bit pixels.
#[derive(Debug)]
pub struct Planar {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Planar {
    pub fn from_rgb(image: &image::RgbImage) -> Self {
        Planar { width: image.width() as usize, height: image.height() as usize, data: image.as_raw().iter().map(|&v| v as f32).collect() }
    }
}

/// Resamples rows [r0, r1) x cols [c0, c1) of `src` to `out_h` x `out_w` and appends the result to
/// `out` in HWC order, normalised to `(v - 127.5) / 128` as the networks expect.
pub fn area_resize_into(src: &Planar, (r0, r1, c0, c1): (usize, usize, usize, usize), out_h: usize, out_w: usize, out: &mut Vec<f32>) {
    let (in_h, in_w) = (r1 - r0, c1 - c0);
    let cols: Vec<(usize, usize)> = (0..out_w).map(|j| window(j, in_w, out_w)).collect();
    out.reserve(out_h * out_w * 3);
    for i in 0..out_h {
        let (h0, h1) = window(i, in_h, out_h);
        for &(w0, w1) in &cols {
            let mut acc = [0f32; 3];
            for row in r0 + h0..r0 + h1 {
                let line = &src.data[(row * src.width + c0) * 3..];
                for col in w0..w1 {
                    let px = &line[col * 3..col * 3 + 3];
                    for c in 0..3 {
                        acc[c] += px[c];
                    }
                }
            }
            let (kh, kw) = ((h1 - h0) as f32, (w1 - w0) as f32);
            out.extend(acc.iter().map(|a| (a / kh / kw - 127.5) * 0.0078125));
        }
    }
}

/// The input span [start, end) averaged into output index `i`.
fn window(i: usize, input: usize, output: usize) -> (usize, usize) {
    (i * input / output, ((i + 1) * input).div_ceil(output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn equals_libtorch_adaptive_average_pooling_bit_for_bit() {
        let (h, w) = (37usize, 53usize);
        let pixels: Vec<u8> = (0..h * w * 3).map(|i| ((i * 7919 + i / 5) % 256) as u8).collect();
        let img = image::RgbImage::from_raw(w as u32, h as u32, pixels).unwrap();
        let src = Planar::from_rgb(&img);
        let t = Tensor::from_slice(&src.data).view([1, h as i64, w as i64, 3]).permute([0, 3, 1, 2]);
        // Shrinking, enlarging and a sub-window, as the pyramid and the crops do.
        for &(win, oh, ow) in &[((0, h, 0, w), 12usize, 20usize), ((3, 20, 5, 14), 24, 24), ((0, h, 0, w), 48, 48)] {
            let mut ours = Vec::new();
            area_resize_into(&src, win, oh, ow, &mut ours);
            let crop = t.slice(2, win.0 as i64, win.1 as i64, 1).slice(3, win.2 as i64, win.3 as i64, 1);
            let want = (crop.adaptive_avg_pool2d([oh as i64, ow as i64]) - 127.5) * 0.0078125;
            let want: Vec<f32> = Vec::try_from(want.permute([0, 2, 3, 1]).contiguous().view([-1]).to_kind(Kind::Float)).unwrap();
            assert_eq!(ours, want, "window {win:?} -> {oh}x{ow}");
        }
    }
}
