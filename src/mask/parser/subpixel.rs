//! An up block's first step at the input's resolution. `ConvLayer(scale='up')` upsamples ×2
//! (nearest), pads by reflection and convolves 3×3; the block's conv1 and its shortcut both do this
//! to the same input. Each output pixel of that chain reads only two rows and two columns of the
//! *input*: for output row `2m`, taps 0 | 1+2 fall on input rows `m-1 | m`; for row `2m+1`, taps
//! 0+1 | 2 on rows `m | m+1`; the reflection at the upsampled border lands on the input's edge row,
//! which is a replication pad of the input. So the chain is four 2×2 convolutions (one per output
//! phase) of the input replication-padded by one pixel: 16 multiply-adds per input pixel and
//! channel pair instead of 36, with no upsampled copy. conv1 and the shortcut run as one
//! convolution with both sets of output channels.

use super::blocks::ConvLayer;
use crate::error::TchResult;
use tch::{Kind, Tensor};

/// conv1 (norm folded, LeakyReLU after) and the shortcut of an up block, fused.
#[derive(Debug)]
pub struct UpConv {
    /// [4 · (c1 + cs), c_in, 2, 2]: phase (a, b) = (row, column parity) at `2a + b`.
    weight: Tensor,
    bias: Tensor,
    /// conv1's output channels (first) and the shortcut's (after them).
    c1: i64,
    cs: i64,
    /// conv1 is activated (LeakyReLU) — always in ParseNet; kept from the layer.
    activated: bool,
}

/// Which of the 3 taps each of a phase's 2 taps sums: `[2, 3]`, as f64.
fn taps(phase: usize, like: &Tensor) -> TchResult<Tensor> {
    let rows: [f64; 6] = if phase == 0 { [1., 0., 0., 0., 1., 1.] } else { [1., 1., 0., 0., 0., 1.] };
    Tensor::f_from_slice(&rows)?.f_view([2, 3])?.f_to_device(like.device())
}

impl UpConv {
    /// Both layers must have folded their norms (biases only) and read the same input.
    pub fn fuse(conv1: &ConvLayer, shortcut: &ConvLayer) -> TchResult<UpConv> {
        let bias = |c: &ConvLayer| c.bias.as_ref().map(Tensor::shallow_clone).expect("a folded or plain conv has a bias");
        let kind = conv1.weight.kind();
        let w = Tensor::f_cat(&[&conv1.weight, &shortcut.weight], 0)?.f_to_kind(Kind::Double)?;
        let b = Tensor::f_cat(&[bias(conv1), bias(shortcut)], 0)?;
        let mut phases = Vec::with_capacity(4);
        for a in 0..2 {
            for c in 0..2 {
                // [2, 3] · [O, I, 3, 3] · [3, 2]: rows, then columns, summed in f64, rounded once.
                phases.push(taps(a, &w)?.f_matmul(&w)?.f_matmul(&taps(c, &w)?.f_transpose(0, 1)?)?);
            }
        }
        Ok(UpConv {
            weight: crate::tensor_ops::channels_last(&Tensor::f_cat(&phases, 0)?.f_to_kind(kind)?)?,
            bias: b.f_repeat([4])?,
            c1: conv1.weight.size()[0],
            cs: shortcut.weight.size()[0],
            activated: conv1.slope.is_some(),
        })
    }

    /// `(shortcut, conv1)` of the block on `x` [N, c_in, H, W] (channels-last), both [N, c, 2H, 2W]
    /// channels-last.
    pub fn forward(&self, x: &Tensor) -> TchResult<(Tensor, Tensor)> {
        let (n, _, h, w) = x.size4()?;
        let c = self.c1 + self.cs;
        // [N, 4c, H+1, W+1]: phase (a, b)'s output pixel (m, n) sits at (m + a, n + b).
        let y = x.f_replication_pad2d([1, 1, 1, 1])?.f_conv2d(&self.weight, Some(&self.bias), [1, 1], [0, 0], [1, 1], 1)?;
        // Interleaved in one pass into memory laid out [N, H, 2, W, 2, c] = [N, 2H, 2W, c], which
        // is [N, c, 2H, 2W] channels-last.
        let out = Tensor::f_empty([n, h, 2, w, 2, c], (y.kind(), y.device()))?;
        for a in 0..2i64 {
            for b in 0..2i64 {
                let phase = y.f_narrow(1, (2 * a + b) * c, c)?.f_narrow(2, a, h)?.f_narrow(3, b, w)?.f_permute([0, 2, 3, 1])?;
                out.f_narrow(2, a, 1)?.f_narrow(4, b, 1)?.f_copy_(&phase.f_unsqueeze(2)?.f_unsqueeze(4)?)?;
            }
        }
        drop(y);
        let out = out.f_view([n, 2 * h, 2 * w, c])?.f_permute([0, 3, 1, 2])?;
        let mut main = out.f_narrow(1, 0, self.c1)?;
        if self.activated {
            main = crate::tensor_ops::leaky_relu_(main, 0.2)?;
        }
        Ok((out.f_narrow(1, self.c1, self.cs)?, main))
    }
}
