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
#[derive(Debug)]
pub struct ResidualDenseBlock {
    convs: [Conv3; 5],
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
        ResidualDenseBlock { convs, num_feat, num_grow_ch }
    }

    /// Channels of the dense buffer: the input and the four growth maps.
    pub fn dense_channels(&self) -> i64 {
        self.num_feat + 4 * self.num_grow_ch
    }

    /// The block on `x` [N, num_feat, H, W]. `dense` is a scratch [N, dense_channels, H, W] tensor,
    /// channels-last (its contents are overwritten): the reference's `torch.cat((x, x1, ..))`
    /// inputs are its leading channels, so each growth map is written once instead of copied
    /// into four ever larger concatenations. The values are the same as the reference's.
    pub fn forward(&self, x: &Tensor, dense: &Tensor) -> TchResult<Tensor> {
        let (nf, g) = (self.num_feat, self.num_grow_ch);
        dense.f_narrow(1, 0, nf)?.f_copy_(x)?;
        for (i, conv) in self.convs[..4].iter().enumerate() {
            let c_in = nf + i as i64 * g;
            let grown = lrelu(conv.forward(&dense.f_narrow(1, 0, c_in)?)?)?;
            dense.f_narrow(1, c_in, g)?.f_copy_(&grown)?;
        }
        let mut x5 = self.convs[4].forward(dense)?;
        // `x5 * 0.2 + x`: the same two f32 roundings, in place (not a fused `x + 0.2 * x5`).
        let _ = x5.f_mul_scalar_(RESIDUAL_SCALE)?;
        let _ = x5.f_add_(x)?;
        Ok(x5)
    }
}

/// `RRDB(num_feat, num_grow_ch)`: three dense blocks, `out * 0.2 + x`.
#[derive(Debug)]
pub struct Rrdb {
    rdbs: [ResidualDenseBlock; 3],
}

impl Rrdb {
    pub fn make_channels_last(&mut self) -> TchResult<()> {
        for conv in self.rdbs.iter_mut().flat_map(|r| r.convs.iter_mut()) {
            conv.make_channels_last()?;
        }
        Ok(())
    }

    pub fn new(p: nn::Path, num_feat: i64, num_grow_ch: i64) -> Self {
        let rdb = |i: u32| ResidualDenseBlock::new(&p / format!("rdb{i}"), num_feat, num_grow_ch);
        Rrdb { rdbs: [rdb(1), rdb(2), rdb(3)] }
    }

    pub fn dense_channels(&self) -> i64 {
        self.rdbs[0].dense_channels()
    }

    /// The block on `x`, with `dense` the scratch buffer of [`ResidualDenseBlock::forward`]
    /// (shared by all blocks: each has finished with it when the next starts).
    pub fn forward(&self, x: &Tensor, dense: &Tensor) -> TchResult<Tensor> {
        let mut out = self.rdbs[0].forward(x, dense)?;
        for rdb in &self.rdbs[1..] {
            out = rdb.forward(&out, dense)?;
        }
        let _ = out.f_mul_scalar_(RESIDUAL_SCALE)?;
        let _ = out.f_add_(x)?;
        Ok(out)
    }
}
