//! GPEN's reference face template: where the 5 landmarks land in an aligned S x S crop.
//!
//! `align_faces.get_reference_facial_points((S, S), 0.25, (0, 0), True)`: the 96 x 112 ArcFace points
//! made square, padded by a quarter on each side, then scaled to the crop (gpen.md §4.5).

/// The ArcFace 96 x 112 template: left eye, right eye, nose, left and right mouth corner.
const ARCFACE_96X112: [[f64; 2]; 5] = [
    [30.29459953, 51.69630051],
    [65.53179932, 51.50139999],
    [48.02519989, 71.73660278],
    [33.54930115, 92.3655014],
    [62.72990036, 92.20410156],
];

/// The 5 template points for an aligned crop of `size` x `size` pixels (pixel-centre coordinates).
pub fn reference_template(size: u32) -> [[f32; 2]; 5] {
    // Square: widen 96 to 112 by shifting x by 8 (the height already is 112).
    // Inner padding 0.25: 112 * 0.25 on each side, shifting both axes by 28 into a 168 x 168 frame.
    let (shift_x, shift_y, frame) = (8.0 + 28.0, 28.0, 168.0);
    let scale = f64::from(size) / frame;
    ARCFACE_96X112.map(|[x, y]| [((x + shift_x) * scale) as f32, ((y + shift_y) * scale) as f32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::excessive_precision)] // the published digits, as gpen.md gives them
    fn matches_the_published_512_and_256_templates() {
        // gpen.md §4.5, from the authors' code.
        let t512 = [[202.04068, 242.88396], [309.43024, 242.28998], [256.07681, 303.95917], [211.95978, 366.82819], [300.89111, 366.33630]];
        let t256 = [[101.02034, 121.44198], [154.71512, 121.14499], [128.03841, 151.97958], [105.97989, 183.41410], [150.44556, 183.16815]];
        for (got, want) in [(reference_template(512), t512), (reference_template(256), t256)] {
            for (g, w) in got.iter().zip(want) {
                assert!((g[0] - w[0]).abs() < 1e-3 && (g[1] - w[1]).abs() < 1e-3, "{g:?} vs {w:?}");
            }
        }
        let t1024 = reference_template(1024);
        assert!((t1024[2][1] / 1024.0 - 0.593670).abs() < 1e-6);
    }
}
