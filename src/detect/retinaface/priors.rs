//! The anchor boxes (`layers/functions/prior_box.py` with `cfg_re50`/`cfg_mnet`, which agree on
//! these): per level, a ceil(H/step) x ceil(W/step) grid, two square anchors per cell.

/// Feature strides of the three pyramid levels.
pub const STEPS: [usize; 3] = [8, 16, 32];
/// Anchor sides in network-input pixels, two per level.
pub const MIN_SIZES: [[usize; 2]; 3] = [[16, 32], [64, 128], [256, 512]];

/// The feature-map size of each level for an `height` x `width` network input.
pub fn grid(height: usize, width: usize) -> [(usize, usize); 3] {
    STEPS.map(|s| (height.div_ceil(s), width.div_ceil(s)))
}

/// How many priors (and so rows of each network output) an input of this size has.
pub fn count(height: usize, width: usize) -> usize {
    grid(height, width).iter().map(|(r, c)| r * c * MIN_SIZES[0].len()).sum()
}

/// `[cx, cy, w, h]` normalised by the input size, in the heads' output order (level, row,
/// column, anchor). Computed in f64 and rounded to f32 once, as the reference builds a Python
/// list of floats and converts it with `torch.Tensor`.
pub fn priors(height: usize, width: usize) -> Vec<[f32; 4]> {
    let (h, w) = (height as f64, width as f64);
    let mut out = Vec::with_capacity(count(height, width));
    for (k, &(rows, cols)) in grid(height, width).iter().enumerate() {
        let step = STEPS[k] as f64;
        for i in 0..rows {
            for j in 0..cols {
                for &m in &MIN_SIZES[k] {
                    let m = m as f64;
                    let cx = (j as f64 + 0.5) * step / w;
                    let cy = (i as f64 + 0.5) * step / h;
                    out.push([cx as f32, cy as f32, (m / w) as f32, (m / h) as f32]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_goldens_and_gpen_md() {
        // golden/retinaface: 512x512 -> 10752 priors; gpen.md §8: 640x480 -> 12600.
        assert_eq!(count(512, 512), 10752);
        assert_eq!(count(480, 640), 12600);
        assert_eq!(priors(480, 640).len(), 12600);
        // Sizes that are not multiples of 32 round every level up.
        assert_eq!(grid(428, 1000), [(54, 125), (27, 63), (14, 32)]);
    }

    #[test]
    fn order_is_level_row_column_anchor() {
        let f = |x: f64| x as f32;
        let p = priors(64, 96);
        // Level 0, cell (0, 0): the two anchor sizes share a centre.
        assert_eq!(p[0], [f(4.0 / 96.0), f(4.0 / 64.0), f(16.0 / 96.0), f(16.0 / 64.0)]);
        assert_eq!(p[1], [f(4.0 / 96.0), f(4.0 / 64.0), f(32.0 / 96.0), f(32.0 / 64.0)]);
        // Next column, then next row (12 columns at stride 8).
        assert_eq!(p[2][0], f(12.0 / 96.0));
        assert_eq!(p[24][..2], [f(4.0 / 96.0), f(12.0 / 64.0)]);
        // Level 1 starts after 8 x 12 x 2 priors.
        assert_eq!(p[8 * 12 * 2], [f(8.0 / 96.0), f(8.0 / 64.0), f(64.0 / 96.0), 1.0]);
    }
}
