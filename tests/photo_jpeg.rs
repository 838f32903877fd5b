//! JPEG decoded as the authors read photos (`cv2.imread`, libjpeg-turbo at its defaults): every
//! pixel of ../shared/golden/jpeg equal to OpenCV's, for the kinds scans and phone photos come in.

mod common;
use std::path::{Path, PathBuf};

use gpen_studio::photo::{ReadLimits, read_photo};
use tch::Tensor;

const KINDS: [&str; 7] = ["s420", "s444", "s422", "progressive", "optimized", "restart", "grey"];

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/jpeg").join(name)
}

/// OpenCV's pixels of `kind` (RGB, H × W × 3) and `image` as the same tensor.
fn opencv_and(kind: &str, image: image::RgbImage) -> (Tensor, Tensor) {
    let want = common::read_npy(&golden(&format!("{kind}.npy")));
    let (w, h) = image.dimensions();
    let got = Tensor::from_slice(&image.into_raw()).view([h as i64, w as i64, 3]);
    (want, got)
}

/// How many values differ, and by how much at most.
fn differences(want: &Tensor, got: &Tensor) -> (i64, i64) {
    assert_eq!(want.size(), got.size());
    let diff = (want.to_kind(tch::Kind::Int) - got.to_kind(tch::Kind::Int)).abs();
    (diff.ne(0).sum(tch::Kind::Int64).int64_value(&[]), diff.max().int64_value(&[]))
}

#[test]
fn every_golden_jpeg_is_decoded_to_opencv_s_pixels_exactly() {
    for kind in KINDS {
        let photo = read_photo(&golden(&format!("{kind}.jpg")), &ReadLimits::default()).unwrap();
        let (want, got) = opencv_and(kind, photo.pixels);
        assert_eq!(differences(&want, &got), (0, 0), "{kind}: (values that differ, largest difference)");
    }
}

/// The golden tells decoders apart: the image crate's own JPEG decoder, which we used before,
/// misses OpenCV's pixels on the subsampled files, so the test above checks which decoder we use.
#[test]
fn the_image_crate_s_decoder_differs_from_opencv_on_subsampled_jpegs() {
    for kind in ["s420", "s422"] {
        let theirs = image::open(golden(&format!("{kind}.jpg"))).unwrap().to_rgb8();
        let (want, got) = opencv_and(kind, theirs);
        let (differing, _) = differences(&want, &got);
        assert!(differing > 0, "{kind}: the image crate's decoder gives OpenCV's pixels too");
    }
}
