//! `Backbone` of `training/loss/model_irse.py` in `ir_se` mode at input size 112: the input layer
//! (3x3 conv, BatchNorm, PReLU), the body of [`BottleneckIrSe`] units, and the output layer
//! (BatchNorm2d, Dropout — the identity in eval —, Flatten, Linear to the embedding, BatchNorm1d),
//! then `l2_norm`.

use super::bottleneck::BottleneckIrSe;
use super::layers::{PRelu, conv_weight};
use crate::checkpoint::Shapes;
use crate::error::{ShapeError, TchResult};
use crate::tensor_ops::BatchNorm;
use std::fmt;
use tch::{Tensor, nn};

/// The side `extract_feats` pools faces to, the only input size GPEN builds the backbone for.
pub const INPUT_SIDE: i64 = 112;

/// One `Bottleneck(in_channel, depth, stride)` of `get_blocks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub c_in: i64,
    pub depth: i64,
    pub stride: i64,
}

/// The shape of a backbone: what the checkpoint's tensors say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrSeConfig {
    /// The input layer's width (64 in `Backbone`).
    pub stem: i64,
    /// Every unit in order; a stage starts at each unit of stride 2.
    pub units: Vec<Unit>,
    /// The embedding's length (the Linear's outputs).
    pub embedding: i64,
}

impl IrSeConfig {
    /// `Backbone(112, 50, 'ir_se')`, the released `model_ir_se50.pth`: stages of 3, 4, 14 and 3
    /// units of width 64, 128, 256 and 512, a 512-d embedding.
    pub fn ir_se50() -> Self {
        let mut units = Vec::new();
        let mut c_in = 64;
        for (depth, n) in [(64, 3), (128, 4), (256, 14), (512, 3)] {
            units.push(Unit { c_in, depth, stride: 2 });
            units.extend((1..n).map(|_| Unit { c_in: depth, depth, stride: 1 }));
            c_in = depth;
        }
        IrSeConfig { stem: 64, units, embedding: 512 }
    }

    /// The body's output width.
    pub fn out_channels(&self) -> i64 {
        self.units.last().map_or(self.stem, |u| u.depth)
    }

    /// The side of the body's output (7 for four stride-2 stages).
    pub fn out_side(&self) -> i64 {
        self.units.iter().fold(INPUT_SIDE, |side, u| (side - 1) / u.stride + 1)
    }

    /// (units, width) of each stage.
    pub fn stages(&self) -> Vec<(usize, i64)> {
        let mut stages: Vec<(usize, i64)> = Vec::new();
        for u in &self.units {
            match stages.last_mut() {
                Some(last) if u.stride == 1 => *last = (last.0 + 1, u.depth),
                _ => stages.push((1, u.depth)),
            }
        }
        stages
    }

    /// Multiply-adds of one embedding (convolutions and the Linear; norms and the SE gates are
    /// negligible): about 6.3 G for IR-SE-50.
    pub fn macs(&self) -> u64 {
        let mut side = INPUT_SIDE as u64;
        let mut macs = side * side * 9 * 3 * self.stem as u64;
        for u in &self.units {
            let (c_in, depth, stride) = (u.c_in as u64, u.depth as u64, u.stride as u64);
            let out = (side - 1) / stride + 1;
            macs += side * side * 9 * c_in * depth + out * out * 9 * depth * depth;
            if c_in != depth {
                macs += out * out * c_in * depth;
            }
            side = out;
        }
        macs + (self.out_channels() as u64) * side * side * self.embedding as u64
    }
}

impl fmt::Display for IrSeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stages = self.stages();
        let units: Vec<String> = stages.iter().map(|s| s.0.to_string()).collect();
        let widths: Vec<String> = stages.iter().map(|s| s.1.to_string()).collect();
        write!(f, "IR-SE backbone (stages of [{}] units, widths [{}], {}-d embedding)", units.join(", "), widths.join(", "), self.embedding)
    }
}

/// The configuration from the checkpoint's shapes: the units and their widths from `body.<i>`,
/// the embedding from the Linear. A unit's stride is not in the weights: the Linear's input
/// (width x side²) gives the number of stride-2 units, `log2(112 / side)`; `get_blocks` starts
/// every stage with one, and a unit that changes width can only start a stage. Should those be
/// fewer (a stage of the previous stage's width, as in the golden's small network), the remaining
/// stage starts are the last units that keep their width — a deeper stage is appended, not
/// inserted. The released IR-SE-50 needs no such guess: its four stages each change width.
pub fn infer_config(shapes: &Shapes) -> Result<IrSeConfig, ShapeError> {
    let stem_w = shapes.get("input_layer.0.weight").ok_or("no `input_layer.0.weight` (not an IR-SE backbone state dict)")?;
    let [stem, 3, 3, 3] = stem_w.as_slice() else {
        return Err(format!("`input_layer.0.weight` has shape {stem_w:?}, expected [C, 3, 3, 3]").into());
    };
    let mut units = Vec::new();
    let mut c_prev = *stem;
    while let Some(w) = shapes.get(&format!("body.{}.res_layer.1.weight", units.len())) {
        let [depth, c_in, 3, 3] = w.as_slice() else {
            return Err(format!("`body.{}.res_layer.1.weight` has shape {w:?}, expected [depth, in, 3, 3]", units.len()).into());
        };
        if *c_in != c_prev {
            return Err(format!("unit {} takes {c_in} channels but receives {c_prev}", units.len()).into());
        }
        units.push(Unit { c_in: *c_in, depth: *depth, stride: 1 });
        c_prev = *depth;
    }
    if units.is_empty() {
        return Err("no `body.0` unit".into());
    }
    if !shapes.contains_key("body.0.res_layer.5.fc1.weight") {
        return Err("the units have no squeeze-excitation (`res_layer.5`): an `ir` backbone, not `ir_se`".into());
    }
    let linear = shapes.get("output_layer.3.weight").ok_or("no `output_layer.3.weight` (the embedding's Linear)")?;
    let [embedding, features] = linear.as_slice() else {
        return Err(format!("`output_layer.3.weight` has shape {linear:?}, expected [embedding, features]").into());
    };
    let area = features / c_prev;
    let side = (area as f64).sqrt().round() as i64;
    let downs = (0..8).find(|&k| side << k == INPUT_SIDE);
    let Some(downs) = downs.filter(|_| side * side * c_prev == *features) else {
        return Err(
            format!("the Linear takes {features} features, not {c_prev} channels on a side that divides 112 by a power of 2").into()
        );
    };
    // Stage starts: the first unit and every unit that changes width, then the last of the others.
    let mut starts: Vec<usize> = (0..units.len()).filter(|&i| i == 0 || units[i].c_in != units[i].depth).collect();
    if starts.len() > downs as usize {
        return Err(format!("{} units change width, but the Linear's input says {downs} stages", starts.len()).into());
    }
    let others: Vec<usize> = (0..units.len()).filter(|i| !starts.contains(i)).collect();
    let missing = downs as usize - starts.len();
    if missing > others.len() {
        return Err(format!("{} units cannot make {downs} stride-2 stages", units.len()).into());
    }
    starts.extend(&others[others.len() - missing..]);
    for i in starts {
        units[i].stride = 2;
    }
    Ok(IrSeConfig { stem: *stem, units, embedding: *embedding })
}

#[derive(Debug)]
pub struct Backbone {
    conv_in: Tensor,
    norm_in: BatchNorm,
    prelu_in: PRelu,
    body: Vec<BottleneckIrSe>,
    norm_out: BatchNorm,
    linear_w: Tensor,
    linear_b: Tensor,
    norm_emb: BatchNorm,
}

impl Backbone {
    pub fn new(p: &nn::Path, config: &IrSeConfig) -> Self {
        let input = p / "input_layer";
        let out = p / "output_layer";
        let (c, side) = (config.out_channels(), config.out_side());
        let linear = &out / 3;
        Backbone {
            conv_in: conv_weight(&input / 0, 3, config.stem, 3),
            norm_in: BatchNorm::new(&input / 1, config.stem),
            prelu_in: PRelu::new(&input / 2, config.stem),
            body: config.units.iter().enumerate().map(|(i, u)| BottleneckIrSe::new(p / "body" / i, u.c_in, u.depth, u.stride)).collect(),
            norm_out: BatchNorm::new(&out / 0, c),
            linear_w: linear.var("weight", &[config.embedding, c * side * side], nn::Init::Const(0.0)),
            linear_b: linear.var("bias", &[config.embedding], nn::Init::Const(0.0)),
            norm_emb: BatchNorm::new(&out / 4, config.embedding),
        }
    }

    /// `x` [N, 3, 112, 112] -> unit embeddings [N, E].
    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let h = x.f_conv2d::<Tensor>(&self.conv_in, None, [1, 1], [1, 1], [1, 1], 1)?;
        let mut h = self.prelu_in.forward(&self.norm_in.forward(&h)?)?;
        for unit in &self.body {
            h = unit.forward(&h)?;
        }
        let h = self.norm_out.forward(&h)?.f_flatten(1, -1)?;
        let e = self.norm_emb.forward(&h.f_linear(&self.linear_w, Some(&self.linear_b))?)?;
        // `l2_norm`: divided by its own L2 norm.
        let norm = e.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?;
        e.f_div(&norm)
    }
}
