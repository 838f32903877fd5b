//! The identity guard: each restored face's similarity to the face that went in, as it is pasted
//! (after the small-face smoothing and the blend by its strength), and — with a floor — what to do
//! with a face below it: only report it (`flag`), or lower its strength (`soften`) to the largest
//! value whose pasted face keeps the similarity at the floor, found by bisection. Strength 0 pastes
//! the original crop itself, so it always meets the floor. Each bisection step embeds every face
//! still searching in one call; GPEN never runs again.

use super::{Embedding, IdentityError, similarity};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// What the engine's GPU stage measures faces with: the identity network, or a fake in tests.
pub trait FaceIdentifier: Send {
    /// One unit embedding per face (square crops of one side).
    fn embed(&self, faces: &[&RgbImage]) -> Result<Vec<Embedding>, IdentityError>;
    /// Frees cached device memory after an out-of-memory error.
    fn release_cache(&self) {}
}

impl FaceIdentifier for super::IdentityNet {
    fn embed(&self, faces: &[&RgbImage]) -> Result<Vec<Embedding>, IdentityError> {
        super::IdentityNet::embed(self, faces)
    }

    fn release_cache(&self) {
        super::IdentityNet::release_cache(self)
    }
}

/// What the guard does with a face below the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardMode {
    /// Report it; paste it as restored.
    Flag,
    /// Lower its strength until it meets the floor (down to 0, the original face).
    #[default]
    Soften,
}

impl std::str::FromStr for GuardMode {
    type Err = crate::error::ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "flag" => Ok(GuardMode::Flag),
            "soften" => Ok(GuardMode::Soften),
            other => Err(crate::error::ConfigError::BadValue(format!("unknown identity guard '{other}'; one of: flag, soften"))),
        }
    }
}

impl std::fmt::Display for GuardMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GuardMode::Flag => "flag",
            GuardMode::Soften => "soften",
        })
    }
}

/// A floor and what to do below it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guard {
    /// Cosine similarity in [-1, 1]; -1 never acts.
    pub floor: f32,
    pub mode: GuardMode,
}

/// Bisection steps when softening: the strength is then found within 1/32 of the run's.
pub const BISECTION_STEPS: u32 = 5;

/// One face's identity as measured (and acted on).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceIdentity {
    /// The strength asked for (the run's, or the face's own).
    pub asked_strength: f32,
    /// The similarity of the face pasted at `asked_strength` to the face that went in.
    pub similarity: f32,
    /// The strength the face is pasted at: `asked_strength` unless softened.
    pub strength: f32,
    /// The similarity at `strength` (1 at strength 0: the original crop).
    pub final_similarity: f32,
    /// `similarity` was below the guard's floor.
    pub below_floor: bool,
    /// The guard lowered the strength.
    pub softened: bool,
}

/// Faces to measure, each given by the crop that went in and how it is pasted at a strength.
pub struct Measure<'a> {
    pub originals: Vec<&'a RgbImage>,
    pub asked: Vec<f32>,
    /// Face `i` as pasted at strength `s` (crop size).
    pub pasted: &'a dyn Fn(usize, f32) -> RgbImage,
}

/// The faces' identities and how many embeddings it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub faces: Vec<FaceIdentity>,
    /// Embeddings computed: two per face, plus one per bisection step of each softened face.
    pub embeddings: usize,
}

/// Measures every face (originals and pasted faces in one call), then softens the faces below the
/// floor as `guard` says.
pub fn measure(id: &dyn FaceIdentifier, m: &Measure, guard: Option<Guard>) -> Result<Measured, IdentityError> {
    let n = m.originals.len();
    let asked_faces: Vec<RgbImage> = (0..n).map(|i| (m.pasted)(i, m.asked[i])).collect();
    let mut inputs: Vec<&RgbImage> = m.originals.clone();
    inputs.extend(asked_faces.iter());
    let feats = if n == 0 { Vec::new() } else { id.embed(&inputs)? };
    let mut embeddings = 2 * n;
    let (originals, pasted) = feats.split_at(n);
    let mut faces: Vec<FaceIdentity> = (0..n)
        .map(|i| {
            let s = if m.asked[i] <= 0.0 { 1.0 } else { similarity(&originals[i], &pasted[i]) };
            let below = guard.is_some_and(|g| s < g.floor);
            FaceIdentity {
                asked_strength: m.asked[i],
                similarity: s,
                strength: m.asked[i],
                final_similarity: s,
                below_floor: below,
                softened: false,
            }
        })
        .collect();
    let Some(guard) = guard.filter(|g| g.mode == GuardMode::Soften) else {
        return Ok(Measured { faces, embeddings });
    };
    // Bisection on [0, asked]: `lo` meets the floor (0 always does), `hi` does not.
    let searching: Vec<usize> = (0..n).filter(|&i| faces[i].below_floor && m.asked[i] > 0.0).collect();
    let mut lo: Vec<(f32, f32)> = searching.iter().map(|_| (0.0, 1.0)).collect();
    let mut hi: Vec<f32> = searching.iter().map(|&i| m.asked[i]).collect();
    for _ in 0..BISECTION_STEPS {
        if searching.is_empty() {
            break;
        }
        let mids: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| (l.0 + h) / 2.0).collect();
        let blended: Vec<RgbImage> = searching.iter().zip(&mids).map(|(&i, &s)| (m.pasted)(i, s)).collect();
        let refs: Vec<&RgbImage> = blended.iter().collect();
        let got = id.embed(&refs)?;
        embeddings += got.len();
        for (k, &i) in searching.iter().enumerate() {
            let s = similarity(&originals[i], &got[k]);
            if s >= guard.floor {
                lo[k] = (mids[k], s);
            } else {
                hi[k] = mids[k];
            }
        }
    }
    for (k, &i) in searching.iter().enumerate() {
        faces[i].strength = lo[k].0;
        faces[i].final_similarity = lo[k].1;
        faces[i].softened = true;
    }
    Ok(Measured { faces, embeddings })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embeds a face by its mean red level as an angle: similarity falls as the pasted face's red
    /// moves away from the original's, monotonic in strength like a real drift.
    struct RedAngle;

    impl FaceIdentifier for RedAngle {
        fn embed(&self, faces: &[&RgbImage]) -> Result<Vec<Embedding>, IdentityError> {
            Ok(faces
                .iter()
                .map(|f| {
                    let red = f.pixels().map(|p| p[0] as f32).sum::<f32>() / (f.width() * f.height()) as f32;
                    let a = red / 255.0 * std::f32::consts::FRAC_PI_2;
                    vec![a.cos(), a.sin()]
                })
                .collect())
        }
    }

    fn flat(red: u8) -> RgbImage {
        RgbImage::from_pixel(4, 4, image::Rgb([red, 0, 0]))
    }

    /// Face 0 goes from red 0 to 255 when restored (drifts far), face 1 from 0 to 20 (stays close).
    fn run(guard: Option<Guard>) -> Measured {
        let originals = [flat(0), flat(0)];
        let restored = [flat(255), flat(20)];
        let pasted = |i: usize, s: f32| flat((restored[i].get_pixel(0, 0)[0] as f32 * s).round() as u8);
        let m = Measure { originals: originals.iter().collect(), asked: vec![1.0, 1.0], pasted: &pasted };
        measure(&RedAngle, &m, guard).unwrap()
    }

    #[test]
    fn without_a_floor_faces_are_only_measured() {
        let got = run(None);
        assert_eq!(got.embeddings, 4);
        assert!(got.faces[0].similarity.abs() < 1e-3, "{:?}", got.faces[0]);
        assert!(got.faces[1].similarity > 0.98);
        assert!(got.faces.iter().all(|f| !f.softened && !f.below_floor && f.strength == 1.0));
    }

    #[test]
    fn a_face_below_the_floor_is_softened_to_the_largest_strength_that_meets_it() {
        let floor = 0.5f32; // cos(a) = 0.5 at a = 60°, red 170: strength 2/3.
        let got = run(Some(Guard { floor, mode: GuardMode::Soften }));
        let f = got.faces[0];
        assert!(f.below_floor && f.softened, "{f:?}");
        assert!(f.final_similarity >= floor && f.strength < 2.0 / 3.0 && f.strength > 2.0 / 3.0 - 1.0 / 32.0, "{f:?}");
        assert!(!got.faces[1].softened && got.faces[1].strength == 1.0);
        assert_eq!(got.embeddings, 4 + BISECTION_STEPS as usize);
    }

    #[test]
    fn flag_reports_and_changes_nothing_a_floor_of_minus_one_never_acts_one_above_every_blend_ends_at_zero() {
        let got = run(Some(Guard { floor: 0.5, mode: GuardMode::Flag }));
        assert!(got.faces[0].below_floor && !got.faces[0].softened && got.faces[0].strength == 1.0);
        let got = run(Some(Guard { floor: -1.0, mode: GuardMode::Soften }));
        assert!(got.faces.iter().all(|f| !f.below_floor && f.strength == 1.0));
        let got = run(Some(Guard { floor: 1.0, mode: GuardMode::Soften }));
        assert!(got.faces.iter().all(|f| f.softened && f.strength == 0.0 && f.final_similarity == 1.0), "{:?}", got.faces);
    }
}
