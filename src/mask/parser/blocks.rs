//! The layers of `face_parse/blocks.py` that ParseNet uses, under the checkpoint's key names.
//!
//! `ConvLayer(k=3)`: optional nearest x2 upsampling, `ReflectionPad2d(ceil((k - 1) / 2))` = 1 px,
//! `Conv2d(k, stride 2 if 'down' else 1, padding 0)` with a bias only when there is no norm,
//! then BatchNorm (eval) and LeakyReLU(0.2) where configured. `ResidualBlock`: `shortcut + conv2(conv1(x))`.

use crate::error::TchResult;
use tch::{Kind, Tensor, nn};

/// Resampling of a `ConvLayer`: `scale='down'` is a stride-2 conv, `'up'` a nearest x2 before the pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    None,
    Down,
    Up,
}

/// `NormLayer(norm_type='bn')`: keys `norm.weight`, `norm.bias`, `norm.running_mean`,
/// `norm.running_var`, `norm.num_batches_tracked` (a counter the file carries; unused in eval).
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

/// `nn.BatchNorm2d`'s default epsilon.
const BN_EPS: f64 = 1e-5;

impl BatchNorm {
    fn new(p: nn::Path, channels: i64) -> Self {
        let p = p / "norm";
        let weight = p.var("weight", &[channels], nn::Init::Const(1.0));
        let bias = p.var("bias", &[channels], nn::Init::Const(0.0));
        let mean = p.zeros_no_train("running_mean", &[channels]);
        let var = p.ones_no_train("running_var", &[channels]);
        let _ = p.zeros_no_train("num_batches_tracked", &[]);
        BatchNorm { weight, bias, mean, var }
    }

    fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_batch_norm(Some(&self.weight), Some(&self.bias), Some(&self.mean), Some(&self.var), false, 0.1, BN_EPS, true)
    }
}

/// `ConvLayer` with a 3x3 kernel, the only size ParseNet builds.
#[derive(Debug)]
pub struct ConvLayer {
    weight: Tensor,
    bias: Option<Tensor>,
    norm: Option<BatchNorm>,
    /// LeakyReLU(0.2) as a one-slope PReLU: `x > 0 ? x : 0.2 * x`, the same product in f32.
    slope: Option<Tensor>,
    scale: Scale,
}

impl ConvLayer {
    /// `bn`: BatchNorm instead of a conv bias; `act`: LeakyReLU(0.2) after it.
    pub fn new(p: nn::Path, c_in: i64, c_out: i64, scale: Scale, bn: bool, act: bool) -> Self {
        let conv = &p / "conv2d";
        let weight = conv.var("weight", &[c_out, c_in, 3, 3], nn::Init::Const(0.0));
        let bias = (!bn).then(|| conv.var("bias", &[c_out], nn::Init::Const(0.0)));
        let norm = bn.then(|| BatchNorm::new(&p / "norm", c_out));
        let slope = act.then(|| Tensor::from_slice(&[0.2f32]).to_device(p.device()).to_kind(Kind::Float));
        ConvLayer { weight, bias, norm, slope, scale }
    }

    /// The conv's input: upsampled when `scale` is `Up`, then reflection-padded by one pixel.
    pub fn prepare(&self, x: &Tensor) -> TchResult<Tensor> {
        match self.scale {
            Scale::Up => {
                let (_, _, h, w) = x.size4()?;
                x.f_upsample_nearest2d([2 * h, 2 * w], None, None)?.f_reflection_pad2d([1, 1, 1, 1])
            }
            Scale::None | Scale::Down => x.f_reflection_pad2d([1, 1, 1, 1]),
        }
    }

    /// Conv, norm and activation on an input that went through [`ConvLayer::prepare`].
    pub fn apply(&self, padded: &Tensor) -> TchResult<Tensor> {
        let stride = if self.scale == Scale::Down { 2 } else { 1 };
        let mut y = padded.f_conv2d(&self.weight, self.bias.as_ref(), [stride, stride], [0, 0], [1, 1], 1)?;
        if let Some(norm) = &self.norm {
            y = norm.forward(&y)?;
        }
        if let Some(slope) = &self.slope {
            y = y.f_prelu(slope)?;
        }
        Ok(y)
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        self.apply(&self.prepare(x)?)
    }
}

/// `ResidualBlock(c_in, c_out, scale)`: the shortcut is the identity when nothing changes, else a
/// plain `ConvLayer(c_in, c_out, 3, scale)` (bias, no norm, no activation); the main path is conv1
/// (BN + LeakyReLU, carries 'up') and conv2 (BN, carries 'down'); no activation after the sum.
#[derive(Debug)]
pub struct ResidualBlock {
    shortcut: Option<ConvLayer>,
    conv1: ConvLayer,
    conv2: ConvLayer,
}

impl ResidualBlock {
    pub fn new(p: nn::Path, c_in: i64, c_out: i64, scale: Scale) -> Self {
        let shortcut =
            (scale != Scale::None || c_in != c_out).then(|| ConvLayer::new(&p / "shortcut_func", c_in, c_out, scale, false, false));
        let (s1, s2) = match scale {
            Scale::Down => (Scale::None, Scale::Down),
            Scale::Up => (Scale::Up, Scale::None),
            Scale::None => (Scale::None, Scale::None),
        };
        let conv1 = ConvLayer::new(&p / "conv1", c_in, c_out, s1, true, true);
        let conv2 = ConvLayer::new(&p / "conv2", c_out, c_out, s2, true, false);
        ResidualBlock { shortcut, conv1, conv2 }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        // The shortcut and conv1 see the same upsampled, padded input (their scales agree: both
        // 'up', or stride-only 'down'/'none'), so it is built once.
        let padded = self.conv1.prepare(x)?;
        let identity = match &self.shortcut {
            Some(s) => s.apply(&padded)?,
            None => x.shallow_clone(),
        };
        let h = self.conv1.apply(&padded)?;
        drop(padded);
        let h = self.conv2.forward(&h)?;
        identity.f_add(&h)
    }
}
