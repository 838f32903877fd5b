//! GPEN's `FullGenerator` (face_model/gpen_model.py): a CNN encoder that maps the degraded face to a
//! latent code and to one feature map per resolution, and the StyleGAN2 generator that decodes them.
//! Module names mirror the checkpoint, so `vs.root() / "generator" / "convs" / 0` is
//! `generator.convs.0.*` in the official `.pth` files.

use super::config::GpenConfig;
use super::equalized::{ConvLayer, EqualLinear};
use super::generator::Generator;
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct FullGenerator {
    pub config: GpenConfig,
    /// `ecd0` .. `ecd{log_size-2}`: full resolution down to 4x4.
    encoder: Vec<ConvLayer>,
    final_linear: EqualLinear,
    generator: Generator,
}

impl FullGenerator {
    /// Registers every parameter and buffer under `p` with GPEN's key names. Weights start as GPEN
    /// initialises them (unit normal, zero biases), which is what `bench --random-weights` runs.
    pub fn new(p: &nn::Path, config: GpenConfig) -> Self {
        let log_size = config.log_size();
        let generator = Generator::new(p / "generator", &config);
        let mut encoder = vec![ConvLayer::new(p / "ecd0" / 0, 3, config.channels(config.size), 1, false)];
        for i in (3..=log_size).rev() {
            let name = format!("ecd{}", log_size - i + 1);
            let (c_in, c_out) = (config.channels(1 << i), config.channels(1 << (i - 1)));
            encoder.push(ConvLayer::new(p / name.as_str() / 0, c_in, c_out, 3, true));
        }
        let final_linear = EqualLinear::new(p / "final_linear" / 0, config.channels(4) * 16, config.style_dim, 1.0, 0.0, true);
        FullGenerator { config, encoder, final_linear, generator }
    }

    /// Restores a batch of aligned faces: `x` is [B, 3, size, size] RGB in [-1, 1] (the dtype of `x`
    /// sets the precision of the convolutions); returns the raw network output, same shape, not clamped.
    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        self.forward_traced(x, &mut |_| {})
    }

    /// [`forward`](Self::forward), calling `stage` with a name after each stage finishes (encoder
    /// layers, mapping, each synthesis resolution) so a profiler can time them.
    pub fn forward_traced(&self, x: &Tensor, stage: &mut dyn FnMut(&str)) -> TchResult<Tensor> {
        let size = x.size();
        let s = self.config.size;
        if size.len() != 4 || size[1] != 3 || size[2] != s || size[3] != s {
            return Err(tch::TchError::Shape(format!("GPEN-{s} expects input [B, 3, {s}, {s}], got {size:?}")));
        }
        let mut features = Vec::with_capacity(self.encoder.len());
        let mut h = self.encoder[0].forward(x)?;
        stage(&format!("encoder ecd0 {s}px"));
        for (i, layer) in self.encoder[1..].iter().enumerate() {
            let next = layer.forward(&h)?;
            features.push(h);
            h = next;
            stage(&format!("encoder ecd{} {}px", i + 1, s >> (i + 1)));
        }
        let z = self.final_linear.forward(&h.f_flatten(1, -1)?)?;
        features.push(h);
        features.reverse(); // 4x4 first, as the synthesis network consumes them
        let w = self.generator.mapping(&z)?;
        stage("final_linear + mapping");
        self.generator.synthesis(&w, &features, stage)
    }
}
