//! The similarity transform (rotation, uniform scale, translation) that best maps one point set onto
//! another in the least-squares sense: Umeyama (1991), "Least-squares estimation of transformation
//! parameters between two point patterns", with scale, as GPEN's `align_faces._umeyama`.
//!
//! In 2-D the SVD has a closed form. Split the cross-covariance `A = Σ dst' src'ᵀ / n` (primes: minus
//! the mean) into a rotation-like part `[[p, -q], [q, p]]` and a reflection-like part. Umeyama's
//! rotation `U·diag(1, ±1)·Vᵀ` maximises `tr(Rᵀ A)` over proper rotations, which is `R(atan2(q, p))`,
//! and his scale `tr(S·D) / σ²_src` equals `2·√(p² + q²) / σ²_src` whether or not the reflection guard
//! (`det A < 0` → `D = diag(1, -1)`) fires. So `s·R = [[a00 + a11, a01 - a10], [a10 - a01, a00 + a11]] / σ²`:
//! never a reflection, and no SVD to get wrong.

use super::Affine2;

/// The transform taking `src` onto `dst` (for alignment: landmarks -> template).
///
/// Degenerate input (all `src` points equal, or `dst` carrying no spread) gives a matrix that
/// [`Affine2::inverse`] rejects, as the reference returns NaN there.
pub fn similarity_from_points(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Affine2 {
    let src = src.map(|[x, y]| [f64::from(x), f64::from(y)]);
    let dst = dst.map(|[x, y]| [f64::from(x), f64::from(y)]);
    let n = src.len() as f64;
    let mean = |pts: &[[f64; 2]; 5]| {
        let s = pts.iter().fold([0.0, 0.0], |acc, p| [acc[0] + p[0], acc[1] + p[1]]);
        [s[0] / n, s[1] / n]
    };
    let (ms, md) = (mean(&src), mean(&dst));

    // Cross-covariance A (dst rows, src columns) and the total variance of src.
    let (mut a, mut var) = ([[0.0f64; 2]; 2], 0.0);
    for (s, d) in src.iter().zip(&dst) {
        let (s, d) = ([s[0] - ms[0], s[1] - ms[1]], [d[0] - md[0], d[1] - md[1]]);
        for i in 0..2 {
            for j in 0..2 {
                a[i][j] += d[i] * s[j] / n;
            }
        }
        var += (s[0] * s[0] + s[1] * s[1]) / n;
    }

    let c = (a[0][0] + a[1][1]) / var; // scale · cos θ
    let s = (a[1][0] - a[0][1]) / var; // scale · sin θ
    let tx = md[0] - (c * ms[0] - s * ms[1]);
    let ty = md[1] - (s * ms[0] + c * ms[1]);
    Affine2 { m: [[c, -s, tx], [s, c, ty]] }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTS: [[f32; 2]; 5] = [[30.3, 51.7], [65.5, 51.5], [48.0, 71.7], [33.5, 92.4], [62.7, 92.2]];

    fn map(t: &Affine2, pts: &[[f32; 2]; 5]) -> [[f32; 2]; 5] {
        pts.map(|[x, y]| t.apply([x.into(), y.into()]).map(|v| v as f32))
    }

    fn sum_sq_residual(t: &Affine2, src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> f64 {
        map(t, src).iter().zip(dst).map(|(p, q)| (f64::from(p[0] - q[0])).powi(2) + (f64::from(p[1] - q[1])).powi(2)).sum()
    }

    #[test]
    fn recovers_a_known_similarity() {
        let (scale, theta, tx, ty) = (3.7f64, 0.4f64, -120.5, 42.25);
        let truth = Affine2 { m: [[scale * theta.cos(), -scale * theta.sin(), tx], [scale * theta.sin(), scale * theta.cos(), ty]] };
        let got = similarity_from_points(&PTS, &map(&truth, &PTS));
        for (g, w) in got.m.iter().flatten().zip(truth.m.iter().flatten()) {
            assert!((g - w).abs() < 1e-4, "{:?} vs {:?}", got.m, truth.m);
        }
    }

    #[test]
    fn a_mirrored_target_gives_the_best_rotation_never_a_reflection() {
        // dst is src mirrored left-right: the exact answer would be a reflection, which a face
        // alignment must not produce (the crop would be a mirror image).
        let dst = PTS.map(|[x, y]| [200.0 - x, y]);
        let t = similarity_from_points(&PTS, &dst);
        assert!(t.determinant() > 0.0, "proper rotation, got {:?}", t.m);

        // Among all rotations, Umeyama's is the least-squares optimum: search the angle densely,
        // with the least-squares scale and translation for each angle.
        let best_at = |theta: f64| sum_sq_residual(&rotation_scale_fit(theta, &PTS, &dst), &PTS, &dst);
        let ours = sum_sq_residual(&t, &PTS, &dst);
        let brute = (0..36000).map(|k| best_at(k as f64 * std::f64::consts::TAU / 36000.0)).fold(f64::INFINITY, f64::min);
        assert!(ours <= brute + 1e-3, "ours {ours} vs brute force {brute}");
    }

    /// Least-squares scale and translation for a fixed rotation angle.
    fn rotation_scale_fit(theta: f64, src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Affine2 {
        let (c, s) = (theta.cos(), theta.sin());
        let mean = |p: &[[f32; 2]; 5]| {
            let (x, y) = p.iter().fold((0.0, 0.0), |a, q| (a.0 + f64::from(q[0]), a.1 + f64::from(q[1])));
            (x / 5.0, y / 5.0)
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut num, mut den) = (0.0, 0.0);
        for (p, q) in src.iter().zip(dst) {
            let (x, y) = (f64::from(p[0]) - ms.0, f64::from(p[1]) - ms.1);
            let (u, v) = (f64::from(q[0]) - md.0, f64::from(q[1]) - md.1);
            num += (c * x - s * y) * u + (s * x + c * y) * v;
            den += x * x + y * y;
        }
        let k = num / den;
        let m = [[k * c, -k * s], [k * s, k * c]];
        let t = [md.0 - (m[0][0] * ms.0 + m[0][1] * ms.1), md.1 - (m[1][0] * ms.0 + m[1][1] * ms.1)];
        Affine2 { m: [[m[0][0], m[0][1], t[0]], [m[1][0], m[1][1], t[1]]] }
    }

    #[test]
    fn coincident_points_are_rejected_downstream() {
        let t = similarity_from_points(&[[5.0, 5.0]; 5], &PTS);
        assert!(t.inverse().is_none());
    }
}
