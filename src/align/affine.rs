//! 2 x 3 affine matrices in pixel coordinates, the form `cv2.warpAffine` takes.

/// `[x', y'] = m · [x, y, 1]`. Kept in f64: translations reach thousands of pixels in large photos.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affine2 {
    pub m: [[f64; 3]; 2],
}

impl Affine2 {
    pub const IDENTITY: Affine2 = Affine2 { m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] };

    pub fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        let m = &self.m;
        [m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2]]
    }

    pub fn determinant(&self) -> f64 {
        self.m[0][0] * self.m[1][1] - self.m[0][1] * self.m[1][0]
    }

    /// The inverse map, or `None` when the matrix collapses the plane (or holds NaN/inf).
    pub fn inverse(&self) -> Option<Affine2> {
        let det = self.determinant();
        if !det.is_finite() || det.abs() < 1e-12 || !self.m.iter().flatten().all(|v| v.is_finite()) {
            return None;
        }
        let [[a, b, c], [d, e, f]] = self.m;
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Some(Affine2 { m: [[ia, ib, -(ia * c + ib * f)], [id, ie, -(id * c + ie * f)]] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_undoes_the_map() {
        let t = Affine2 { m: [[5.6, 0.3, -4596.4], [-0.3, 5.6, -741.5]] };
        let inv = t.inverse().unwrap();
        for p in [[834.5, 217.9], [0.0, 0.0], [1327.0, 567.0]] {
            let q = inv.apply(t.apply(p));
            assert!((q[0] - p[0]).abs() < 1e-9 && (q[1] - p[1]).abs() < 1e-9, "{p:?} -> {q:?}");
        }
        assert!(Affine2 { m: [[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]] }.inverse().is_none());
        assert!(Affine2 { m: [[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0]] }.inverse().is_none());
    }
}
