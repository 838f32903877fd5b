//! The blocks of `sr_model/rrdbnet_arch.py` under the checkpoint's key names: a 3x3 convolution
//! (`nn.Conv2d(c_in, c_out, 3, 1, 1)`, keys `weight`, `bias`), `ResidualDenseBlock` (`conv1`..`conv5`)
//! and `RRDB` (`rdb1`..`rdb3`).

use crate::error::TchResult;
use tch::{Kind, Tensor, nn};

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
}

/// `nn.LeakyReLU(0.2)`: `x > 0 ? x : 0.2 * x`, computed by PReLU with one shared slope (the same
/// f32 product; tch's `leaky_relu` has no slope argument).
#[derive(Debug)]
pub struct LeakyRelu {
    slope: Tensor,
}

impl LeakyRelu {
    pub fn new(device: tch::Device) -> Self {
        LeakyRelu { slope: Tensor::from_slice(&[0.2f32]).to_device(device).to_kind(Kind::Float) }
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_prelu(&self.slope)
    }
}

/// `ResidualDenseBlock(num_feat, num_grow_ch)`: conv_k sees the concatenation of the block input
/// and all earlier growth maps; `conv5(...) * 0.2 + x`.
#[derive(Debug)]
pub struct ResidualDenseBlock {
    convs: [Conv3; 5],
    lrelu: LeakyRelu,
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
        ResidualDenseBlock { convs, lrelu: LeakyRelu::new(p.device()), num_feat, num_grow_ch }
    }

    /// Channels of the dense buffer: the input and the four growth maps.
    pub fn dense_channels(&self) -> i64 {
        self.num_feat + 4 * self.num_grow_ch
    }

    /// The block on `x` [N, num_feat, H, W]. `dense` is a scratch [N, dense_channels, H, W] tensor
    /// (its contents are overwritten): the reference's `torch.cat((x, x1, ..))` inputs are its
    /// leading channels, so each growth map is written once instead of copied into four ever
    /// larger concatenations (for N = 1 a leading channel range is contiguous, so the convs read
    /// it in place). The values are the same as the reference's.
    pub fn forward(&self, x: &Tensor, dense: &Tensor) -> TchResult<Tensor> {
        let (nf, g) = (self.num_feat, self.num_grow_ch);
        dense.f_narrow(1, 0, nf)?.f_copy_(x)?;
        for (i, conv) in self.convs[..4].iter().enumerate() {
            let c_in = nf + i as i64 * g;
            let grown = self.lrelu.forward(&conv.forward(&dense.f_narrow(1, 0, c_in)?)?)?;
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
