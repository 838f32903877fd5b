//! The network of `facemodels/retinaface.py` in phase `test`: body, FPN, one SSH per level, and
//! the class/box/landmark heads, with the softmax over the two classes applied.

use super::Backbone;
use super::fpn::Fpn;
use super::heads::Head;
use super::mobilenet::MobileNet025;
use super::resnet::ResNet50;
use super::ssh::Ssh;
use crate::error::TchResult;
use tch::{Tensor, nn};

#[derive(Debug)]
enum Body {
    ResNet(ResNet50),
    Mobile(MobileNet025),
}

#[derive(Debug)]
pub struct Net {
    body: Body,
    fpn: Fpn,
    ssh: [Ssh; 3],
    class: Head,
    bbox: Head,
    landmark: Head,
}

impl Net {
    /// Registers every weight under its checkpoint key (`body.*`, `fpn.*`, `ssh{1,2,3}.*`,
    /// `ClassHead.*`, `BboxHead.*`, `LandmarkHead.*`) below `p`.
    pub fn new(p: &nn::Path, backbone: Backbone) -> Self {
        let (body, in_ch, out) = match backbone {
            // cfg_re50: in_channel 256 -> layer2..4 give 512/1024/2048; out_channel 256.
            Backbone::ResNet50 => (Body::ResNet(ResNet50::new(&(p / "body"))), 256, 256),
            // cfg_mnet: in_channel 32 -> stage1..3 give 64/128/256; out_channel 64.
            Backbone::MobileNet025 => (Body::Mobile(MobileNet025::new(&(p / "body"))), 32, 64),
        };
        let ssh = |i: usize| Ssh::new(&(p / format!("ssh{i}")), out, out);
        Net {
            body,
            fpn: Fpn::new(&(p / "fpn"), [in_ch * 2, in_ch * 4, in_ch * 8], out),
            ssh: [ssh(1), ssh(2), ssh(3)],
            class: Head::new(&(p / "ClassHead"), out, 2),
            bbox: Head::new(&(p / "BboxHead"), out, 4),
            landmark: Head::new(&(p / "LandmarkHead"), out, 10),
        }
    }

    /// [N, 3, H, W] -> (loc [N, P, 4], conf [N, P, 2] softmaxed, landms [N, P, 10]).
    pub fn forward(&self, x: &Tensor) -> TchResult<(Tensor, Tensor, Tensor)> {
        let c = match &self.body {
            Body::ResNet(b) => b.forward(x)?,
            Body::Mobile(b) => b.forward(x)?,
        };
        let p = self.fpn.forward(&c)?;
        drop(c);
        let f = [self.ssh[0].forward(&p[0])?, self.ssh[1].forward(&p[1])?, self.ssh[2].forward(&p[2])?];
        drop(p);
        let loc = self.bbox.forward(&f)?;
        let logits = self.class.forward(&f)?;
        let conf = logits.f_softmax(-1, logits.kind())?;
        let landms = self.landmark.forward(&f)?;
        Ok((loc, conf, landms))
    }
}
