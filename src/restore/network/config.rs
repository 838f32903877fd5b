//! Hyper-parameters of GPEN's `FullGenerator` and the released configurations.

use std::fmt;

/// Constructor arguments of `FullGenerator(size, style_dim, n_mlp, channel_multiplier, narrow)`
/// in `face_model/gpen_model.py` (yangxy/GPEN). `isconcat=True`, `lr_mlp=0.01` and the
/// `[1, 3, 3, 1]` blur kernel are the same in every released model and fixed here.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GpenConfig {
    /// Side of the square face crop in pixels (a power of two, at least 8).
    pub size: i64,
    /// Width of the latent style vector (512 in every release).
    pub style_dim: i64,
    /// Number of layers of the mapping network (8 in every release).
    pub n_mlp: i64,
    /// Width multiplier of the layers at 64 px and above.
    pub channel_multiplier: i64,
    /// Width multiplier of every layer (0.5 for GPEN-BFR-256).
    pub narrow: f64,
}

/// Learning-rate multiplier of the mapping network; it scales the stored weights at run time.
pub const LR_MLP: f64 = 0.01;

impl GpenConfig {
    pub const BFR_256: GpenConfig = GpenConfig::new(256, 1, 0.5);
    pub const BFR_512: GpenConfig = GpenConfig::new(512, 2, 1.0);
    pub const BFR_1024: GpenConfig = GpenConfig::new(1024, 2, 1.0);
    pub const BFR_2048: GpenConfig = GpenConfig::new(2048, 2, 1.0);

    pub const fn new(size: i64, channel_multiplier: i64, narrow: f64) -> Self {
        GpenConfig { size, style_dim: 512, n_mlp: 8, channel_multiplier, narrow }
    }

    /// A released configuration by its short name (`bfr-512`, `colorization-1024`, ...).
    pub fn named(name: &str) -> Option<GpenConfig> {
        let config = match name.trim().to_ascii_lowercase().as_str() {
            "bfr-256" | "256" => Self::BFR_256,
            "bfr-512" | "512" | "seg2face-512" => Self::BFR_512,
            "bfr-1024" | "1024" | "colorization-1024" | "inpainting-1024" => Self::BFR_1024,
            "bfr-2048" | "2048" => Self::BFR_2048,
            _ => return None,
        };
        Some(config)
    }

    pub const NAMES: &'static [&'static str] =
        &["bfr-256", "bfr-512", "bfr-1024", "bfr-2048", "colorization-1024", "inpainting-1024", "seg2face-512"];

    /// `int(log2(size))`.
    pub fn log_size(&self) -> i64 {
        63 - (self.size as u64).leading_zeros() as i64
    }

    /// Channel count at resolution `r`, as GPEN's `channels` dict computes it (truncated with `int()`).
    pub fn channels(&self, r: i64) -> i64 {
        let (cm, n) = (self.channel_multiplier as f64, self.narrow);
        let width = match r {
            4 | 8 | 16 | 32 => 512.0 * n,
            64 => 256.0 * cm * n,
            128 => 128.0 * cm * n,
            256 => 64.0 * cm * n,
            512 => 32.0 * cm * n,
            1024 => 16.0 * cm * n,
            2048 => 8.0 * cm * n,
            _ => panic!("GPEN has no layer at resolution {r}"),
        };
        width as i64
    }

    /// Checks what the network needs before any tensor is allocated.
    pub fn validate(&self) -> Result<(), crate::error::ShapeError> {
        let s = self.size;
        if !(8..=2048).contains(&s) || s & (s - 1) != 0 {
            return Err(format!("size must be a power of two from 8 to 2048, got {s}").into());
        }
        if self.style_dim < 1 || self.n_mlp < 1 || self.channel_multiplier < 1 || self.narrow.is_nan() || self.narrow <= 0.0 {
            return Err(format!("invalid configuration {self}").into());
        }
        let mut r = 4;
        while r <= s {
            if self.channels(r) < 1 {
                return Err(format!("{self} leaves no channels at {r} px").into());
            }
            r *= 2;
        }
        Ok(())
    }

    /// Parameter count of the generator (weights only, without the blur-kernel buffers).
    pub fn parameter_count(&self) -> i64 {
        let (l, sd) = (self.log_size(), self.style_dim);
        let c = |r: i64| self.channels(r);
        let modulated = |i: i64, o: i64, k: i64| o * i * k * k + sd * i + i;
        // Mapping network.
        let mut n = self.n_mlp * (sd * sd + sd);
        // Constant, conv1, to_rgb1.
        n += c(4) * 16 + modulated(c(4), c(4), 3) + 1 + 2 * c(4) + modulated(2 * c(4), 3, 1) + 3;
        let mut prev = c(4);
        for i in 3..=l {
            let cur = c(1 << i);
            n += modulated(2 * prev, cur, 3) + 1 + 2 * cur;
            n += modulated(2 * cur, cur, 3) + 1 + 2 * cur;
            n += modulated(2 * cur, 3, 1) + 3;
            prev = cur;
        }
        // Encoder and final linear layer.
        n += 3 * c(self.size) + c(self.size);
        for i in (3..=l).rev() {
            n += c(1 << i) * c(1 << (i - 1)) * 9 + c(1 << (i - 1));
        }
        n + c(4) * 16 * sd + sd
    }
}

impl fmt::Display for GpenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GPEN {} (channel_multiplier {}, narrow {}", self.size, self.channel_multiplier, self.narrow)?;
        if self.style_dim != 512 || self.n_mlp != 8 {
            write!(f, ", style_dim {}, n_mlp {}", self.style_dim, self.n_mlp)?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_tables_match_gpen() {
        let c: Vec<i64> = [4, 32, 64, 128, 256, 512].iter().map(|&r| GpenConfig::BFR_512.channels(r)).collect();
        assert_eq!(c, [512, 512, 512, 256, 128, 64]);
        let c: Vec<i64> = [4, 64, 128, 256].iter().map(|&r| GpenConfig::BFR_256.channels(r)).collect();
        assert_eq!(c, [256, 128, 64, 32]);
        assert_eq!(GpenConfig::BFR_2048.channels(2048), 16);
    }

    #[test]
    fn parameter_counts_match_the_released_models() {
        // Counted with the reference code (gpen.md §0 and §3).
        assert_eq!(GpenConfig::BFR_512.parameter_count(), 71_005_223);
    }

    #[test]
    fn rejects_impossible_sizes() {
        assert!(GpenConfig::new(500, 2, 1.0).validate().is_err());
        assert!(GpenConfig::new(4096, 2, 1.0).validate().is_err());
        assert!(GpenConfig::new(64, 1, 0.001).validate().is_err());
        assert!(GpenConfig::BFR_1024.validate().is_ok());
    }
}
