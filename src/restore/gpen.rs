//! GPEN ready to run: a loaded generator on a device with a precision, taking and returning face
//! crops. Converts between 8-bit RGB crops and the network's [-1, 1] tensors as GPEN's `FaceGAN` does.

use super::checkpoint::{self, LoadedGenerator};
use crate::checkpoint::CheckpointError;
use crate::device::Precision;
use crate::error::RunError;
use crate::restore::network::GpenConfig;
use image::RgbImage;
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Debug)]
pub struct Gpen {
    loaded: LoadedGenerator,
    pub device: Device,
    pub precision: Precision,
    /// Pixels in [0, 1] instead of [-1, 1] (GPEN's `is_norm=False`, for GPEN-Seg2face-512).
    pub unit_range: bool,
}

impl Gpen {
    pub fn load(path: &Path, device: Device, precision: Precision) -> Result<Self, CheckpointError> {
        Ok(Gpen { loaded: checkpoint::load_generator(path, device)?, device, precision, unit_range: false })
    }

    pub fn random(config: GpenConfig, device: Device, precision: Precision, seed: i64) -> Result<Self, crate::error::ShapeError> {
        Ok(Gpen { loaded: checkpoint::random_generator(config, device, seed)?, device, precision, unit_range: false })
    }

    pub fn config(&self) -> GpenConfig {
        self.loaded.net.config
    }

    pub fn size(&self) -> u32 {
        self.config().size as u32
    }

    /// Runs the raw network on `x` [B, 3, S, S] (RGB, [-1, 1], any device); returns fp32 on the CPU.
    /// Allocation failures come back as [`RunError::OutOfMemory`] so a caller can split the batch.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, RunError> {
        let _guard = tch::no_grad_guard();
        let x = x.f_to_device(self.device)?.f_to_kind(self.precision.kind())?;
        let y = self.loaded.net.forward(&x)?;
        Ok(y.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?)
    }

    /// Runs `x` once and returns the wall time of each stage of the network (waiting for the GPU
    /// after each stage, so the times are real), for `bench generator --profile`.
    pub fn profile(&self, x: &Tensor) -> Result<Vec<(String, f64)>, RunError> {
        let _guard = tch::no_grad_guard();
        let x = x.f_to_device(self.device)?.f_to_kind(self.precision.kind())?;
        let sync = || {
            if let Device::Cuda(i) = self.device {
                tch::Cuda::synchronize(i as i64);
            }
        };
        sync();
        let mut times = Vec::new();
        let mut last = std::time::Instant::now();
        let _output = self.loaded.net.forward_traced(&x, &mut |name| {
            sync();
            let now = std::time::Instant::now();
            times.push((name.to_string(), (now - last).as_secs_f64()));
            last = now;
        })?;
        Ok(times)
    }

    /// Restores aligned face crops (each already `size` x `size`) in one batch.
    pub fn restore(&self, faces: &[&RgbImage]) -> Result<Vec<RgbImage>, RunError> {
        if self.unit_range {
            // `img2tensor`/`tensor2img` without the normalisation: x / 255 in, clip(y, 0, 1) × 255 out.
            let x = faces_to_tensor(faces)?.f_add_scalar(1.0)?.f_mul_scalar(0.5)?;
            let y = self.forward(&x)?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
            return tensor_to_faces(&y);
        }
        let x = faces_to_tensor(faces)?;
        tensor_to_faces(&self.forward(&x)?)
    }
}

/// 8-bit RGB crops -> [B, 3, S, S] float in [-1, 1]: `(x / 255 - 0.5) / 0.5` (GPEN's `img2tensor`).
pub fn faces_to_tensor(faces: &[&RgbImage]) -> Result<Tensor, RunError> {
    let (w, h) = faces.first().map(|f| f.dimensions()).unwrap_or((0, 0));
    let mut bytes = Vec::with_capacity(faces.len() * (w * h * 3) as usize);
    for f in faces {
        assert_eq!(f.dimensions(), (w, h), "all faces of a batch have the model's size");
        bytes.extend_from_slice(f.as_raw());
    }
    let t = Tensor::f_from_data_size(&bytes, &[faces.len() as i64, h as i64, w as i64, 3], Kind::Uint8)?;
    Ok(t.f_permute([0, 3, 1, 2])?.f_to_kind(Kind::Float)?.f_div_scalar(127.5)?.f_sub_scalar(1.0)?)
}

/// [B, 3, S, S] network output -> 8-bit RGB crops: `clip(x * 0.5 + 0.5, 0, 1) * 255`, truncated,
/// as GPEN's `tensor2img` does (`astype(np.uint8)`). Rounding would be the better conversion (it
/// darkens nothing; truncation lowers every pixel by half a level on average), but it moves 46-49 %
/// of the restored faces' values by one level against the authors' pipeline and its photos by up to
/// 30 levels where the parser's mask flips (golden/pipeline `tolerance_study`), and matching their
/// photos is the point here.
pub fn tensor_to_faces(y: &Tensor) -> Result<Vec<RgbImage>, RunError> {
    let (b, _, h, w) = y.size4()?;
    let bytes = y
        .f_mul_scalar(0.5)?
        .f_add_scalar(0.5)?
        .f_clamp(0.0, 1.0)?
        .f_mul_scalar(255.0)?
        .f_trunc()?
        .f_to_kind(Kind::Uint8)?
        .f_permute([0, 2, 3, 1])?
        .f_contiguous()?;
    let flat: Vec<u8> = Vec::try_from(bytes.f_flatten(0, -1)?)?;
    let per = (h * w * 3) as usize;
    Ok((0..b as usize)
        .map(|i| RgbImage::from_raw(w as u32, h as u32, flat[i * per..(i + 1) * per].to_vec()).expect("sized buffer"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_conversion_truncates_as_gpen_does() {
        let img = RgbImage::from_fn(4, 4, |x, y| image::Rgb([(x * 60) as u8, (y * 60) as u8, 255]));
        let t = faces_to_tensor(&[&img]).unwrap();
        assert_eq!(t.size(), [1, 3, 4, 4]);
        assert!((t.double_value(&[0, 2, 0, 0]) - 1.0).abs() < 1e-6);
        assert!((t.double_value(&[0, 0, 0, 0]) + 1.0).abs() < 1e-6);
        // 0 and 255 survive the trip; 60 comes back as 59, as in GPEN (60 / 127.5 - 1 is a hair
        // below its exact value in float32, and truncation takes the level below).
        let back = tensor_to_faces(&t).unwrap();
        assert_eq!(back[0].get_pixel(0, 0).0, [0, 0, 255]);
        assert_eq!(back[0].get_pixel(1, 0)[0], 59);
        // Half a level up reaches 60; values clip at the ends of the range.
        let nudged = tensor_to_faces(&(&t + 0.0039)).unwrap();
        assert_eq!(nudged[0].get_pixel(1, 0)[0], 60);
        let over = tensor_to_faces(&(&t + 1.0)).unwrap();
        assert_eq!(over[0].get_pixel(0, 0), &image::Rgb([127, 127, 255]));
    }
}
