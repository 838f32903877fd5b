//! The blocks of `sr_model/rrdbnet_arch.py` under the checkpoint's key names: a 3x3 convolution
//! (`nn.Conv2d(c_in, c_out, 3, 1, 1)`, keys `weight`, `bias`), `ResidualDenseBlock` (`conv1`..`conv5`)
//! and `RRDB` (`rdb1`..`rdb3`).

use crate::error::TchResult;
use tch::{Tensor, nn};

/// ESRGAN's residual scaling ("Emperically, we use 0.2 to scale the residual"), in both blocks.
const RESIDUAL_SCALE: f64 = 0.2;

/// `nn.Conv2d(c_in, c_out, 3, stride 1, padding 1)` with a bias. Placeholder weights are zeros:
/// every real use loads a checkpoint, and speed does not depend on the values.
#[derive(Debug)]
pub struct Conv3 {
    weight: Tensor,
    bias: Tensor,
}

impl Conv3 {
    pub fn new(p: nn::Path, c_in: i64, c_out: i64) -> Self {
        let weight = p.var("weight", &[c_out, c_in, 3, 3], nn::Init::Const(0.0));
        let bias = p.var("bias", &[c_out], nn::Init::Const(0.0));
        Conv3 { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_conv2d(&self.weight, Some(&self.bias), [1, 1], [1, 1], [1, 1], 1)
    }

    /// Replaces the weight by a channels-last copy (after loading: the loaded values are copied).
    pub fn make_channels_last(&mut self) -> TchResult<()> {
        self.weight = crate::tensor_ops::channels_last(&self.weight)?;
        Ok(())
    }
}

/// `nn.LeakyReLU(0.2)` on a fresh convolution output, in place: `x > 0 ? x : 0.2f * x`.
pub fn lrelu(x: Tensor) -> TchResult<Tensor> {
    crate::tensor_ops::leaky_relu_(x, 0.2)
}

/// `ResidualDenseBlock(num_feat, num_grow_ch)`: conv_k sees the concatenation of the block input
/// and all earlier growth maps; `conv5(...) * 0.2 + x`.
///
/// Run without the concatenations: a convolution of concatenated inputs is the sum of each
/// input's convolution with its slice of the weight, so conv_k is accumulated from the block input
/// and the growth maps as they are, each slice a channels-last tensor of its own
/// ([`ResidualDenseBlock::split_weights`]). No map is copied: in channels-last memory a
/// concatenation buffer's leading channels are strided, and oneDNN would first copy them out (the
/// whole network is 1.37× faster this way on the CPU, docs/BENCHMARKS.md); the sums differ from
/// the reference's in the last bits only.
#[derive(Debug)]
pub struct ResidualDenseBlock {
    convs: [Conv3; 5],
    /// conv_k's weight split by input: `[k][j]` reads the block input (j = 0) or growth map j.
    parts: Option<Vec<Vec<Tensor>>>,
    num_feat: i64,
    num_grow_ch: i64,
}

impl ResidualDenseBlock {
    pub fn new(p: nn::Path, num_feat: i64, num_grow_ch: i64) -> Self {
        let conv = |i: i64| {
            let c_out = if i == 4 { num_feat } else { num_grow_ch };
            Conv3::new(&p / format!("conv{}", i + 1), num_feat + i * num_grow_ch, c_out)
        };
        let convs = [conv(0), conv(1), conv(2), conv(3), conv(4)];
        ResidualDenseBlock { convs, parts: None, num_feat, num_grow_ch }
    }

    /// conv_k's weight for input j: its channels in the reference's concatenation order.
    fn part(&self, k: usize, j: usize) -> TchResult<Tensor> {
        if let Some(parts) = &self.parts {
            return Ok(parts[k][j].shallow_clone());
        }
        let (start, width) =
            if j == 0 { (0, self.num_feat) } else { (self.num_feat + (j as i64 - 1) * self.num_grow_ch, self.num_grow_ch) };
        self.convs[k].weight.f_narrow(1, start, width)
    }

    /// Splits every convolution's weight by input, each slice channels-last (after loading).
    pub fn split_weights(&mut self) -> TchResult<()> {
        let mut parts = Vec::with_capacity(5);
        for k in 0..5 {
            parts.push((0..=k).map(|j| crate::tensor_ops::channels_last(&self.part(k, j)?)).collect::<TchResult<Vec<_>>>()?);
        }
        self.parts = Some(parts);
        Ok(())
    }

    /// The block on `x` [N, num_feat, H, W].
    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let mut inputs: Vec<Tensor> = vec![x.shallow_clone()];
        for k in 0..5 {
            let mut acc = inputs[0].f_conv2d(&self.part(k, 0)?, Some(&self.convs[k].bias), [1, 1], [1, 1], [1, 1], 1)?;
            for (j, input) in inputs.iter().enumerate().skip(1) {
                let _ = acc.f_add_(&input.f_conv2d::<Tensor>(&self.part(k, j)?, None, [1, 1], [1, 1], [1, 1], 1)?)?;
            }
            if k == 4 {
                // `x5 * 0.2 + x`: the same two f32 roundings, in place (not a fused `x + 0.2 * x5`).
                let _ = acc.f_mul_scalar_(RESIDUAL_SCALE)?;
                let _ = acc.f_add_(x)?;
                return Ok(acc);
            }
            inputs.push(lrelu(acc)?);
        }
        unreachable!("the fifth convolution returns")
    }
}

/// `RRDB(num_feat, num_grow_ch)`: three dense blocks, `out * 0.2 + x`.
#[derive(Debug)]
pub struct Rrdb {
    rdbs: [ResidualDenseBlock; 3],
}

impl Rrdb {
    /// Each dense block's weights split by input, channels-last (after loading).
    pub fn split_weights(&mut self) -> TchResult<()> {
        self.rdbs.iter_mut().try_for_each(ResidualDenseBlock::split_weights)
    }

    pub fn new(p: nn::Path, num_feat: i64, num_grow_ch: i64) -> Self {
        let rdb = |i: u32| ResidualDenseBlock::new(&p / format!("rdb{i}"), num_feat, num_grow_ch);
        Rrdb { rdbs: [rdb(1), rdb(2), rdb(3)] }
    }

    /// The block on `x`.
    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let mut out = self.rdbs[0].forward(x)?;
        for rdb in &self.rdbs[1..] {
            out = rdb.forward(&out)?;
        }
        let _ = out.f_mul_scalar_(RESIDUAL_SCALE)?;
        let _ = out.f_add_(x)?;
        Ok(out)
    }
}
