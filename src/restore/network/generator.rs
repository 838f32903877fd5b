//! GPEN's `Generator`: the StyleGAN2 mapping network and synthesis network, whose per-layer noise
//! inputs are the encoder's feature maps.

use super::config::{GpenConfig, LR_MLP};
use super::equalized::EqualLinear;
use super::ops;
use super::styled::{StyledConv, ToRgb};
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct Generator {
    /// `style.1` .. `style.n_mlp` (index 0 is the parameter-free PixelNorm).
    style: Vec<EqualLinear>,
    input: Tensor,
    conv1: StyledConv,
    to_rgb1: ToRgb,
    convs: Vec<StyledConv>,
    to_rgbs: Vec<ToRgb>,
}

impl Generator {
    pub fn new(p: nn::Path, config: &GpenConfig) -> Self {
        let sd = config.style_dim;
        let style_path = &p / "style";
        let style = (1..=config.n_mlp).map(|i| EqualLinear::new(&style_path / i, sd, sd, LR_MLP, 0.0, true)).collect();
        let c4 = config.channels(4);
        let input = (&p / "input").var("input", &[1, c4, 4, 4], nn::Init::Randn { mean: 0.0, stdev: 1.0 });
        let conv1 = StyledConv::new(&p / "conv1", c4, c4, sd, false);
        let to_rgb1 = ToRgb::new(&p / "to_rgb1", 2 * c4, sd, false);
        let (convs_path, rgbs_path) = (&p / "convs", &p / "to_rgbs");
        let (mut convs, mut to_rgbs) = (Vec::new(), Vec::new());
        let mut prev = c4;
        for i in 3..=config.log_size() {
            let cur = config.channels(1 << i);
            let n = convs.len();
            // Inputs are twice as wide as the previous output: the concatenated encoder feature.
            convs.push(StyledConv::new(&convs_path / n, 2 * prev, cur, sd, true));
            convs.push(StyledConv::new(&convs_path / (n + 1), 2 * cur, cur, sd, false));
            to_rgbs.push(ToRgb::new(&rgbs_path / to_rgbs.len(), 2 * cur, sd, true));
            prev = cur;
        }
        Generator { style, input, conv1, to_rgb1, convs, to_rgbs }
    }

    /// Maps the encoder's code `z` [B, style_dim] to the style `w` (no truncation, as GPEN runs it).
    pub fn mapping(&self, z: &Tensor) -> TchResult<Tensor> {
        let mut w = ops::pixel_norm(z)?;
        for layer in &self.style {
            w = layer.forward(&w)?;
        }
        Ok(w)
    }

    /// `features[0]` is the 4x4 encoder map, `features[k]` the one at 4 * 2^k px. A single style
    /// drives every layer: GPEN passes one latent, so all `n_latent` slots hold the same `w`.
    /// `stage` is called after each resolution, for profiling.
    pub fn synthesis(&self, w: &Tensor, features: &[Tensor], stage: &mut dyn FnMut(&str)) -> TchResult<Tensor> {
        let batch = w.size()[0];
        let kind = features[0].kind();
        let x = self.input.f_to_kind(kind)?.f_expand([batch, -1, -1, -1], false)?;
        let mut x = self.conv1.forward(&x, w, &features[0])?;
        let mut skip = self.to_rgb1.forward(&x, w, None)?;
        stage("synthesis 4px");
        for (j, (pair, to_rgb)) in self.convs.chunks(2).zip(&self.to_rgbs).enumerate() {
            let feature = &features[j + 1];
            x = pair[0].forward(&x, w, feature)?;
            x = pair[1].forward(&x, w, feature)?;
            skip = to_rgb.forward(&x, w, Some(&skip))?;
            stage(&format!("synthesis {}px", 8 << j));
        }
        Ok(skip)
    }
}
