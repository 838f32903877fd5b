//! The layers of `face_parse/blocks.py` that ParseNet uses, under the checkpoint's key names.
//!
//! `ConvLayer(k=3)`: optional nearest x2 upsampling, `ReflectionPad2d(ceil((k - 1) / 2))` = 1 px,
//! `Conv2d(k, stride 2 if 'down' else 1, padding 0)` with a bias only when there is no norm,
//! then BatchNorm (eval) and LeakyReLU(0.2) where configured. `ResidualBlock`: `shortcut + conv2(conv1(x))`.
//!
//! After loading, [`ResidualBlock::fold`] turns a block into its inference form: BatchNorms folded
//! into the convolutions, and an up block's upsample + pad + conv1 + shortcut run as one
//! low-resolution convolution ([`super::subpixel::UpConv`]).

use super::subpixel::UpConv;
use crate::error::TchResult;
use crate::tensor_ops::BatchNorm;
use crate::tensor_ops::channels_last;
use crate::tensor_ops::leaky_relu_;
use tch::{Kind, Tensor, nn};

/// Resampling of a `ConvLayer`: `scale='down'` is a stride-2 conv, `'up'` a nearest x2 before the pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    None,
    Down,
    Up,
}

/// `ConvLayer` with a 3x3 kernel, the only size ParseNet builds.
#[derive(Debug)]
pub struct ConvLayer {
    pub(super) weight: Tensor,
    pub(super) bias: Option<Tensor>,
    norm: Option<BatchNorm>,
    /// LeakyReLU(0.2) as a one-slope PReLU: `x > 0 ? x : 0.2 * x`, the same product in f32 (tch's
    /// `leaky_relu_` takes no slope).
    pub(super) slope: Option<Tensor>,
    pub(super) scale: Scale,
    /// The inference form ([`ConvLayer::make_inference`]).
    inference: bool,
}

impl ConvLayer {
    /// `bn`: BatchNorm instead of a conv bias; `act`: LeakyReLU(0.2) after it.
    pub fn new(p: nn::Path, c_in: i64, c_out: i64, scale: Scale, bn: bool, act: bool) -> Self {
        let conv = &p / "conv2d";
        let weight = conv.var("weight", &[c_out, c_in, 3, 3], nn::Init::Const(0.0));
        let bias = (!bn).then(|| conv.var("bias", &[c_out], nn::Init::Const(0.0)));
        // `NormLayer(norm_type='bn')` holds its BatchNorm2d as `norm`: keys `norm.norm.*`.
        let norm = bn.then(|| BatchNorm::new(&p / "norm" / "norm", c_out));
        let slope = act.then(|| Tensor::from_slice(&[0.2f32]).to_device(p.device()).to_kind(Kind::Float));
        ConvLayer { weight, bias, norm, slope, scale, inference: false }
    }

    /// Folds the BatchNorm into the convolution (inference only): `w * s`, `b * s + t` for the
    /// norm's `y * s + t`. The layer then holds its own tensors, no longer the loaded ones.
    pub fn fold_norm(&mut self) -> TchResult<()> {
        let Some(norm) = self.norm.take() else { return Ok(()) };
        let (scale, shift) = norm.affine()?;
        let kind = self.weight.kind();
        let weight = self.weight.f_to_kind(Kind::Double)?.f_mul(&scale.f_view([-1, 1, 1, 1])?)?;
        let bias = match &self.bias {
            Some(b) => b.f_to_kind(Kind::Double)?.f_mul(&scale)?.f_add(&shift)?,
            None => shift,
        };
        self.weight = weight.f_to_kind(kind)?;
        self.bias = Some(bias.f_to_kind(kind)?);
        Ok(())
    }

    /// The inference form: weights in channels-last memory (the layout the folded network runs
    /// in), the reflection pad done without a padded copy ([`reflect_conv`]), the activation in
    /// place. Not for an 'up' layer (its up block runs it as a sub-pixel convolution).
    pub fn make_inference(&mut self) -> TchResult<()> {
        self.fold_norm()?;
        self.weight = channels_last(&self.weight)?;
        self.inference = true;
        Ok(())
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
        if !self.inference {
            return self.apply(&self.prepare(x)?);
        }
        let stride = if self.scale == Scale::Down { 2 } else { 1 };
        let y = reflect_conv(x, &self.weight, self.bias.as_ref(), stride)?;
        match &self.slope {
            Some(_) => leaky_relu_(y, 0.2),
            None => Ok(y),
        }
    }
}

/// `conv2d(ReflectionPad2d(1)(x), w, b, stride)` for a 3×3 kernel, without the padded copy of
/// `x`: the convolution runs with zero padding, which differs from the reflection only in the
/// outputs that read the padding ring — the first row and column, and the last ones where the
/// stride reaches the far edge — and those lines are recomputed from two-pixel strips of `x`
/// padded by reflection.
pub fn reflect_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: i64) -> TchResult<Tensor> {
    let (_, _, h, wd) = x.size4()?;
    let y = x.f_conv2d(w, b, [stride, stride], [1, 1], [1, 1], 1)?;
    let (oh, ow) = (y.size()[2], y.size()[3]);
    // (dim, first input line of the strip, its pad [left, right, top, bottom], output line).
    let mut edges = vec![(2, 0, [1, 1, 1, 0], 0), (3, 0, [1, 0, 1, 1], 0)];
    if (h - 1) % stride == 0 {
        edges.push((2, h - 2, [1, 1, 0, 1], oh - 1));
    }
    if (wd - 1) % stride == 0 {
        edges.push((3, wd - 2, [0, 1, 1, 1], ow - 1));
    }
    for (dim, first, pad, line) in edges {
        let strip = x.f_narrow(dim, first, 2)?.f_reflection_pad2d(pad)?.f_conv2d(w, b, [stride, stride], [0, 0], [1, 1], 1)?;
        y.f_narrow(dim, line, 1)?.f_copy_(&strip)?;
    }
    Ok(y)
}

/// `ResidualBlock(c_in, c_out, scale)`: the shortcut is the identity when nothing changes, else a
/// plain `ConvLayer(c_in, c_out, 3, scale)` (bias, no norm, no activation); the main path is conv1
/// (BN + LeakyReLU, carries 'up') and conv2 (BN, carries 'down'); no activation after the sum.
#[derive(Debug)]
pub struct ResidualBlock {
    shortcut: Option<ConvLayer>,
    conv1: ConvLayer,
    conv2: ConvLayer,
    /// An up block's conv1 and shortcut as one sub-pixel convolution, once folded.
    up: Option<UpConv>,
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
        ResidualBlock { shortcut, conv1, conv2, up: None }
    }

    /// The inference form: norms folded; an up block's conv1 and shortcut fused (they read the
    /// same upsampled, padded input) into one convolution at the input's resolution.
    pub fn fold(&mut self) -> TchResult<()> {
        if self.conv1.scale == Scale::Up {
            self.conv1.fold_norm()?;
            let shortcut = self.shortcut.as_ref().expect("an up block has a shortcut conv");
            self.up = Some(UpConv::fuse(&self.conv1, shortcut)?);
        } else {
            self.conv1.make_inference()?;
            if let Some(s) = &mut self.shortcut {
                s.make_inference()?;
            }
        }
        self.conv2.make_inference()
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let (identity, h) = match &self.up {
            Some(up) => up.forward(x)?,
            // Folded: each convolution pads for itself, without a copy.
            None if self.conv1.inference => {
                let identity = match &self.shortcut {
                    Some(s) => s.forward(x)?,
                    None => x.shallow_clone(),
                };
                (identity, self.conv1.forward(x)?)
            }
            None => {
                // The shortcut and conv1 see the same padded input (their scales agree: both
                // 'up', or stride-only 'down'/'none'), so it is built once.
                let padded = self.conv1.prepare(x)?;
                let identity = match &self.shortcut {
                    Some(s) => s.apply(&padded)?,
                    None => x.shallow_clone(),
                };
                let h = self.conv1.apply(&padded)?;
                (identity, h)
            }
        };
        let mut h = self.conv2.forward(&h)?;
        // The sum in place into conv2's output (ours alone); a + b is b + a in floating point.
        let _ = h.f_add_(&identity)?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        a.f_sub(b).unwrap().abs().max().double_value(&[])
    }

    /// The padless convolution equals padding by reflection, at both strides, on even and odd
    /// sizes (odd: a stride-2 output then reads the far padding too), in both memory layouts.
    #[test]
    fn reflect_conv_equals_the_padded_convolution() {
        tch::manual_seed(7);
        let (w, b) = (Tensor::randn([6, 4, 3, 3], (Kind::Float, Device::Cpu)), Tensor::randn([6], (Kind::Float, Device::Cpu)));
        for (h, wd) in [(8, 8), (9, 7), (2, 5)] {
            let x = Tensor::randn([2, 4, h, wd], (Kind::Float, Device::Cpu));
            for stride in [1, 2] {
                let want = x.reflection_pad2d([1, 1, 1, 1]).conv2d(&w, Some(&b), [stride, stride], [0, 0], [1, 1], 1);
                for (x, w) in [(x.shallow_clone(), w.shallow_clone()), (channels_last(&x).unwrap(), channels_last(&w).unwrap())] {
                    let got = reflect_conv(&x, &w, Some(&b), stride).unwrap();
                    assert_eq!(got.size(), want.size());
                    assert!(max_diff(&got, &want) < 1e-5, "{h}x{wd} stride {stride}: {}", max_diff(&got, &want));
                }
            }
        }
    }

    /// An up block in its folded form (norms folded, sub-pixel conv1 + shortcut) computes the
    /// block as loaded, on odd sizes and a batch of two.
    #[test]
    fn folded_up_block_equals_the_loaded_one() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut block = ResidualBlock::new(vs.root() / "b", 5, 4, Scale::Up);
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                let v = if name.contains("running_var") || name.ends_with("norm.weight") {
                    Tensor::rand(t.size(), (Kind::Float, Device::Cpu)) + 0.5
                } else {
                    Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.3
                };
                t.copy_(&v);
            }
        });
        let x = Tensor::randn([2, 5, 7, 6], (Kind::Float, Device::Cpu));
        let want = tch::no_grad(|| block.forward(&x)).unwrap();
        tch::no_grad(|| block.fold()).unwrap();
        let got = tch::no_grad(|| block.forward(&channels_last(&x).unwrap())).unwrap();
        assert_eq!(got.size(), [2, 4, 14, 12]);
        assert!(max_diff(&got, &want) < 1e-5, "{}", max_diff(&got, &want));
    }
}
