//! Affine warps on the device, equivalent to `cv2.warpAffine(src, M, (W, H), flags=INTER_LINEAR,
//! borderMode=BORDER_CONSTANT, borderValue=0)`: output pixel (x, y) takes the bilinear sample of the
//! source at `M⁻¹·(x, y)`, integer coordinates being pixel centres, taps outside the source counting
//! as black. One `grid_sampler` call warps many faces, so crops and paste-backs batch on the GPU.
//!
//! OpenCV quantises the sample position to 1/32 pixel and its weights to 15-bit fixed point; here both
//! stay in floating point, which moves 8-bit results by well under a level on average.

use super::{Affine2, AlignError};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

/// `grid_sampler` modes: bilinear interpolation, zeros outside.
const BILINEAR: i64 = 0;
const ZEROS: i64 = 0;

/// Warps a float image `[C, H, W]` (or `[1, C, H, W]`) with `matrix` (source pixels -> output pixels,
/// the matrix `cv2.warpAffine` takes) into `[C, out_h, out_w]`.
pub fn warp_affine(image: &Tensor, matrix: &Affine2, out_w: u32, out_h: u32) -> Result<Tensor, AlignError> {
    let image = if image.dim() == 4 { image.f_squeeze_dim(0)? } else { image.shallow_clone() };
    Ok(warp_affine_batch(&image, std::slice::from_ref(matrix), out_w, out_h)?.f_squeeze_dim(0)?)
}

/// Warps one float image `[C, H, W]` once per matrix into `[N, C, out_h, out_w]`, on the image's device.
pub fn warp_affine_batch(image: &Tensor, matrices: &[Affine2], out_w: u32, out_h: u32) -> Result<Tensor, AlignError> {
    let (c, h, w) = image.size3()?;
    let n = matrices.len() as i64;
    let device = image.device();
    let (ow, oh) = (i64::from(out_w), i64::from(out_h));

    // Output pixel -> source pixel maps, [N, 3, 2] so that [x, y, 1] · map = [X, Y].
    let mut inverse = Vec::<f64>::with_capacity(matrices.len() * 6);
    for m in matrices {
        let inv = m.inverse().ok_or_else(|| AlignError::Degenerate(format!("matrix {:?} is not invertible", m.m)))?;
        inverse.extend(inv.m.iter().flatten());
    }
    let maps = Tensor::f_from_slice(&inverse)?.f_view([n, 2, 3])?.f_transpose(1, 2)?.f_to_device(device)?;

    // Homogeneous output coordinates [oh·ow, 3], in f64 so large photos keep sub-pixel precision.
    let xs = Tensor::f_arange(ow, (Kind::Double, device))?.f_view([1, ow])?.f_expand([oh, ow], false)?;
    let ys = Tensor::f_arange(oh, (Kind::Double, device))?.f_view([oh, 1])?.f_expand([oh, ow], false)?;
    let ones = Tensor::f_ones([oh, ow], (Kind::Double, device))?;
    let coords = Tensor::f_stack(&[xs, ys, ones], -1)?.f_view([1, oh * ow, 3])?;
    let source = coords.f_matmul(&maps)?; // [N, oh·ow, 2]

    // Pixel index -> grid_sampler's [-1, 1] with align_corners=false: -1 and 1 are the outer edges of
    // the border pixels, so index X sits at (2X + 1) / W - 1.
    let scale = Tensor::f_from_slice(&[2.0 / w as f64, 2.0 / h as f64])?.f_to_device(device)?;
    let offset = Tensor::f_from_slice(&[1.0 / w as f64 - 1.0, 1.0 / h as f64 - 1.0])?.f_to_device(device)?;
    let grid = source.f_mul(&scale)?.f_add(&offset)?.f_view([n, oh, ow, 2])?.f_to_kind(image.kind())?;

    let input = image.f_unsqueeze(0)?.f_expand([n, c, h, w], false)?;
    Ok(input.f_grid_sampler(&grid, BILINEAR, ZEROS, false)?)
}

/// 8-bit RGB -> float `[3, H, W]` with values 0..255 on `device` (bytes travel, floats are made there).
pub fn image_to_tensor(image: &RgbImage, device: Device) -> Result<Tensor, AlignError> {
    let (w, h) = image.dimensions();
    let t = Tensor::f_from_data_size(image.as_raw(), &[i64::from(h), i64::from(w), 3], Kind::Uint8)?;
    Ok(t.f_to_device(device)?.f_permute([2, 0, 1])?.f_to_kind(Kind::Float)?)
}

/// Float `[N, 3, H, W]` with values 0..255 -> 8-bit RGB images, rounded to nearest as OpenCV does.
pub fn tensor_to_images(t: &Tensor) -> Result<Vec<RgbImage>, AlignError> {
    let (n, _, h, w) = t.size4()?;
    let bytes = t.f_round()?.f_clamp(0.0, 255.0)?.f_to_kind(Kind::Uint8)?.f_permute([0, 2, 3, 1])?.f_contiguous()?;
    let flat = Vec::<u8>::try_from(bytes.f_to_device(Device::Cpu)?.f_flatten(0, -1)?)?;
    let per = (h * w * 3) as usize;
    Ok((0..n as usize)
        .map(|i| RgbImage::from_raw(w as u32, h as u32, flat[i * per..(i + 1) * per].to_vec()).expect("sized buffer"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Tensor {
        // One channel, 4 x 3, value = 10·x + 100·y.
        let v: Vec<f32> = (0..3).flat_map(|y| (0..4).map(move |x| (10 * x + 100 * y) as f32)).collect();
        Tensor::from_slice(&v).view([1, 3, 4])
    }

    #[test]
    fn identity_and_integer_shifts_are_exact() {
        let img = ramp();
        let same = warp_affine(&img, &Affine2::IDENTITY, 4, 3).unwrap();
        assert_eq!(f64::try_from((&same - &img).abs().max()).unwrap(), 0.0);
        // Shift right by one: output column x shows source column x - 1; column 0 samples outside.
        let shifted = warp_affine(&img, &Affine2 { m: [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]] }, 4, 3).unwrap();
        assert_eq!(shifted.double_value(&[0, 1, 0]), 0.0);
        assert_eq!(shifted.double_value(&[0, 1, 2]), 110.0);
    }

    #[test]
    fn half_pixel_positions_blend_neighbours_and_black_outside() {
        let img = ramp();
        // Output (x, y) samples source (x + 0.5, y + 0.5).
        let m = Affine2 { m: [[1.0, 0.0, -0.5], [0.0, 1.0, -0.5]] };
        let out = warp_affine(&img, &m, 4, 3).unwrap();
        assert!((out.double_value(&[0, 0, 0]) - 55.0).abs() < 1e-4);
        // Source (3.5, 0.5): the right-hand taps are outside, so half the weight is black.
        assert!((out.double_value(&[0, 0, 3]) - (30.0 + 130.0) / 4.0).abs() < 1e-4);
    }

    #[test]
    fn batches_one_matrix_per_output() {
        let img = ramp();
        let ms = [Affine2::IDENTITY, Affine2 { m: [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]] }];
        let out = warp_affine_batch(&img, &ms, 8, 6).unwrap();
        assert_eq!(out.size(), [2, 1, 6, 8]);
        // Scale 2: output (2, 2) samples source (1, 1).
        assert!((out.double_value(&[1, 0, 2, 2]) - 110.0).abs() < 1e-4);
    }

    #[test]
    fn images_round_trip_through_tensors() {
        let img = RgbImage::from_fn(5, 2, |x, y| image::Rgb([x as u8 * 40, y as u8 * 90, 7]));
        let t = image_to_tensor(&img, Device::Cpu).unwrap();
        assert_eq!(t.size(), [3, 2, 5]);
        assert_eq!(tensor_to_images(&t.unsqueeze(0)).unwrap()[0], img);
    }
}
