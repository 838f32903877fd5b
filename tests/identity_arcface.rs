//! The identity network matches GPEN's own (golden/arcface: the official `Backbone` of
//! `training/loss/model_irse.py` in `ir_se` mode, a smaller configuration of the same classes with
//! seeded weights, run through `IDLoss.extract_feats`), and the released IR-SE-50's key set.

mod common;
use common::*;
use gpen_studio::checkpoint::Shapes;
use gpen_studio::identity::{
    Backbone, IdentityError, IdentityNet, IrSeConfig, Unit, bytes_per_face, infer_config, input_tensor, similarity,
};
use image::RgbImage;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor, nn};

fn dir() -> PathBuf {
    golden().join("arcface")
}

fn load() -> IdentityNet {
    IdentityNet::load(&dir().join("weights.pth"), Device::Cpu).expect("golden identity network loads")
}

/// The golden's faces of side `size` (`input{size}_u8.npy`, N x S x S x 3 RGB).
fn faces(size: u32) -> Vec<RgbImage> {
    let t = read_npy(&dir().join(format!("input{size}_u8.npy"))).to_kind(Kind::Uint8).contiguous();
    let n = t.size()[0] as usize;
    let flat = Vec::<u8>::try_from(&t.view([-1])).unwrap();
    let plane = (size * size * 3) as usize;
    (0..n).map(|i| RgbImage::from_raw(size, size, flat[i * plane..(i + 1) * plane].to_vec()).unwrap()).collect()
}

fn unit(c_in: i64, depth: i64, stride: i64) -> Unit {
    Unit { c_in, depth, stride }
}

#[test]
fn the_configuration_is_read_from_the_file_with_its_strides() {
    let net = load();
    // config.json's blocks: [(64,32,2)], [(32,64,2), (64,64,1)], [(64,128,2)], [(128,128,2)].
    let want = IrSeConfig {
        stem: 64,
        units: vec![unit(64, 32, 2), unit(32, 64, 2), unit(64, 64, 1), unit(64, 128, 2), unit(128, 128, 2)],
        embedding: 128,
    };
    assert_eq!(*net.config(), want);
    assert_eq!(net.config().stages(), vec![(1, 32), (2, 64), (1, 128), (1, 128)]);
    assert_eq!(net.config().out_side(), 7);
}

#[test]
fn pooled_crops_embeddings_and_similarities_match_the_authors_extract_feats() {
    let net = load();
    for size in [512u32, 256] {
        let faces = faces(size);
        let refs: Vec<&RgbImage> = faces.iter().collect();
        let x = input_tensor(&refs).unwrap();
        let pooled = net.pooled(&x).unwrap();
        let d = max_abs_diff(&pooled, &read_npy(&dir().join(format!("pooled{size}.npy"))));
        assert!(d <= 1e-5, "pooled crop at {size}: max diff {d}");

        let feats = net.embed(&refs).unwrap();
        let want = read_npy(&dir().join(format!("feats{size}.npy"))).to_kind(Kind::Float);
        let got = Tensor::from_slice(&feats.concat()).view([faces.len() as i64, -1]);
        let d = max_abs_diff(&got, &want);
        assert!(d <= 1e-4, "embeddings at {size}: max diff {d}");

        let sims = read_npy(&dir().join(format!("sims{size}.npy"))).to_kind(Kind::Float);
        for i in 0..faces.len() {
            for j in 0..faces.len() {
                let want = sims.double_value(&[i as i64, j as i64]) as f32;
                let got = similarity(&feats[i], &feats[j]);
                assert!((got - want).abs() <= 1e-4, "similarity {i}-{j} at {size}: {got} against {want}");
            }
        }
        // The blurred, mirrored and noisy copies of face 0 stay nearer to it than the other faces
        // do to each other (the property the guard relies on; here with random weights).
        assert!(similarity(&feats[0], &feats[0]) > 0.9999);
    }
}

#[test]
fn one_call_or_one_face_at_a_time_gives_the_same_embeddings() {
    let net = load();
    let faces = faces(256);
    let refs: Vec<&RgbImage> = faces.iter().collect();
    let together = net.embed(&refs).unwrap();
    for (face, want) in faces.iter().zip(&together) {
        let alone = net.embed(&[face]).unwrap().remove(0);
        let d = alone.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d <= 1e-5, "{d}");
    }
}

#[test]
fn a_face_whose_side_is_not_a_multiple_of_256_is_resized_to_256_first() {
    let net = load();
    let face = faces(512).remove(0);
    let odd = gpen_studio::imgproc::resize_linear_rgb(&face, 300, 300);
    let want = net.embed(&[&gpen_studio::imgproc::resize_linear_rgb(&odd, 256, 256)]).unwrap().remove(0);
    let got = net.embed(&[&odd]).unwrap().remove(0);
    assert_eq!(got, want);
    assert!(gpen_studio::identity::needs_resize(300, 300) && !gpen_studio::identity::needs_resize(1024, 1024));
    assert!(gpen_studio::identity::needs_resize(512, 511));
}

#[test]
fn the_released_ir_se50_has_exactly_the_listed_keys_and_its_configuration_is_inferred() {
    let want: Shapes = read_key_table(&dir().join("keys-ir_se50.tsv")).into_iter().collect();
    assert_eq!(want.len(), 397);
    let config = IrSeConfig::ir_se50();
    assert_eq!(infer_config(&want).unwrap(), config);
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Backbone::new(&vs.root(), &config);
    let got = gpen_studio::checkpoint::expected_shapes(&vs);
    assert_eq!(got, want);
    let values: i64 = want.values().map(|s| s.iter().product::<i64>()).sum();
    assert!((43_700_000..43_900_000).contains(&values), "{values} values");
    // About 6.3 GMAC a face (reference/users.md), an estimate of tens of MB a 512 px face.
    let macs = config.macs() as f64 / 1e9;
    assert!((6.0..6.6).contains(&macs), "{macs} GMAC");
    let mb = bytes_per_face(&config, 512) as f64 / 1e6;
    assert!((10.0..100.0).contains(&mb), "{mb} MB");
}

#[test]
fn an_fp16_file_loads_and_measures_like_the_fp32_one() {
    let tmp = tempfile::tempdir().unwrap();
    let half = tmp.path().join("half.pth");
    run_torch_python(
        "import sys, torch\n\
         sd = torch.load(sys.argv[1], map_location='cpu')\n\
         torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}, sys.argv[2])",
        &[&dir().join("weights.pth"), &half],
    );
    let net = IdentityNet::load(&half, Device::Cpu).unwrap();
    let faces = faces(256);
    let refs: Vec<&RgbImage> = faces.iter().collect();
    let feats = net.embed(&refs).unwrap();
    let sims = read_npy(&dir().join("sims256.npy")).to_kind(Kind::Float);
    for i in 0..faces.len() {
        let d = (similarity(&feats[0], &feats[i]) - sims.double_value(&[0, i as i64]) as f32).abs();
        assert!(d <= 2e-2, "face {i}: {d}");
    }
}

#[test]
fn other_networks_and_missing_files_are_told_apart() {
    let parser = golden().join("parsenet/weights.pth");
    let err = IdentityNet::load(&parser, Device::Cpu).unwrap_err();
    assert!(matches!(err, IdentityError::NotArcFace { .. }), "{err}");
    assert!(err.to_string().contains("input_layer.0.weight"), "{err}");
    let err = IdentityNet::load(&dir().join("no-such.pth"), Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    let net = load();
    let err = net.extract_feats(&Tensor::zeros([1, 3, 300, 300], (Kind::Float, Device::Cpu))).unwrap_err();
    assert!(matches!(err, IdentityError::Input(_)), "{err}");
}
