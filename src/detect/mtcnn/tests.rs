//! Checks against the reference values of mtcnn.md §1.3, §2.5 and §4. They need the weights in
//! `models/mtcnn` (or `$GPEN_MTCNN_DIR`).

use super::*;

fn mtcnn() -> Mtcnn {
    let dir = default_models_dir();
    Mtcnn::load(&dir, Device::Cpu).unwrap_or_else(|e| panic!("MTCNN weights in {}: {e}", dir.display()))
}

/// x[b,c,h,w] = ((7c + 3h + 5w + 11b) mod 17) / 17 - 0.5 (mtcnn.md §2.5).
fn pattern(n: i64, size: i64) -> Tensor {
    let mut v = Vec::new();
    for b in 0..n {
        for c in 0..3 {
            for h in 0..size {
                for w in 0..size {
                    v.push(((7 * c + 3 * h + 5 * w + 11 * b) % 17) as f32 / 17.0 - 0.5);
                }
            }
        }
    }
    Tensor::from_slice(&v).view([n, 3, size, size])
}

fn assert_close(t: &Tensor, want: &[f32]) {
    let got = to_vec(t).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 2e-6, "{got:?}\n vs {want:?}");
    }
}

#[test]
fn weights_load_with_their_stored_strides() {
    let found: BTreeMap<String, Tensor> = checkpoint::read_tensors(&default_models_dir().join("pnet.pt")).unwrap().into_iter().collect();
    let w = &found["conv1.weight"];
    assert_close(&w.get(0).get(0), &[-0.081647, 0.835915, 1.246497, -0.015041, 0.237985, -1.345264, 0.124574, -0.410818, -0.580772]);
    // Position-weighted checksum: a loader that ignores the strides permutes the elements.
    let weighted = |t: &Tensor| to_vec(t).unwrap().iter().enumerate().map(|(i, &v)| v as f64 * ((i % 97) + 1) as f64).sum::<f64>();
    assert!((weighted(w) - 396.389735).abs() < 1e-4);
    let found: BTreeMap<String, Tensor> = checkpoint::read_tensors(&default_models_dir().join("onet.pt")).unwrap().into_iter().collect();
    assert!((weighted(&found["dense5.weight"]) - -7059.265937).abs() < 1e-3);
}

#[test]
fn networks_reproduce_the_reference_test_vectors() {
    let m = mtcnn();
    tch::no_grad(|| {
        let (reg, prob) = m.pnet.forward(&pattern(1, 12)).unwrap();
        assert_close(&reg, &[0.120010, 0.097093, -0.127388, 0.043632]);
        assert_close(&prob, &[0.982126, 0.017874]);
        let (reg, prob) = m.pnet.forward(&pattern(1, 16)).unwrap();
        assert_eq!(prob.size(), [1, 2, 3, 3]);
        assert_close(&prob.get(0).get(1), &[0.017874, 0.042857, 0.043604, 0.028824, 0.018397, 0.030484, 0.092584, 0.036968, 0.028512]);
        assert_close(&reg.get(0).select(1, 0).select(1, 2), &[0.090704, 0.038463, -0.126199, -0.003737]);

        let (reg, prob) = m.rnet.forward(&pattern(2, 24)).unwrap();
        assert_close(&reg, &[0.034269, -0.042990, -0.034371, 0.107842, 0.035640, -0.044718, -0.025979, 0.112202]);
        assert_close(&prob, &[0.999538, 0.000462, 0.999570, 0.000430]);

        let out = m.onet.forward(&pattern(2, 48)).unwrap();
        assert_close(&out.reg, &[0.020567, -0.116004, 0.022618, 0.165775, 0.017555, -0.112927, 0.021504, 0.167439]);
        assert_close(
            &out.landmarks.get(0),
            &[0.253288, 0.558345, 0.344520, 0.350627, 0.602371, 0.331790, 0.214056, 0.580204, 0.846601, 0.754131],
        );
        assert_close(&out.prob, &[0.999569, 0.000431, 0.999552, 0.000448]);
    });
}

#[test]
fn pyramid_matches_the_reference_levels() {
    let scales = pyramid(1328, 568, &DetectOptions::default());
    assert_eq!(scales.len(), 10);
    assert_eq!(scales[1], 0.42539999999999994);
    assert_eq!(scales[9], 0.027162351627517383);
    let sizes: Vec<(usize, usize)> = scales.iter().map(|s| ((568.0 * s + 1.0) as usize, (1328.0 * s + 1.0) as usize)).collect();
    assert_eq!(sizes[0], (341, 797));
    assert_eq!(sizes[4], (87, 202));
    assert_eq!(sizes[9], (16, 37));
    assert!(pyramid(30, 19, &DetectOptions::default()).is_empty());
}

#[test]
fn tiny_and_blank_images_have_no_faces() {
    let m = mtcnn();
    for (w, h) in [(1, 1), (11, 30), (30, 19), (20, 20)] {
        assert!(m.detect(&RgbImage::new(w, h)).unwrap().is_empty(), "{w}x{h}");
    }
    assert!(m.detect(&RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128]))).unwrap().is_empty());
}

#[test]
fn a_wrong_weights_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["pnet.pt", "rnet.pt", "onet.pt"] {
        // Every file is R-Net: P-Net's check must name the disagreeing keys.
        std::fs::copy(default_models_dir().join("rnet.pt"), dir.path().join(name)).unwrap();
    }
    let err = Mtcnn::load(dir.path(), Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("MTCNN P-Net") && err.contains("conv1.weight"), "{err}");
    let err = Mtcnn::load(&dir.path().join("nowhere"), Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn bad_options_are_refused() {
    let opts = DetectOptions { factor: 1.0, ..DetectOptions::default() };
    assert!(mtcnn().with_options(opts).is_err());
}

#[test]
fn an_installed_package_finds_its_weights_beside_the_binary() {
    let prefix = tempfile::tempdir().unwrap();
    let exe = prefix.path().join("bin").join("gpen-studio");
    let data = prefix.path().join("home-data");
    let candidates = models_dir_candidates(Some(&exe), &data);
    let installed = prefix.path().join("share").join("gpen-studio").join("mtcnn");
    assert_eq!(candidates.first(), Some(&installed), "{candidates:?}");
    assert_eq!(candidates.last(), Some(&data.join("mtcnn")));
    assert!(!has_weights(&installed));
    std::fs::create_dir_all(&installed).unwrap();
    for (i, name) in WEIGHT_FILES.iter().enumerate() {
        assert!(!has_weights(&installed), "only {i} of the files are there");
        std::fs::copy(default_models_dir().join(name), installed.join(name)).unwrap();
    }
    assert!(has_weights(&installed));
    // The folder found this way really loads.
    Mtcnn::load(&installed, Device::Cpu).unwrap();
}
