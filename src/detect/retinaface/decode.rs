//! `detect()`'s post-processing after the network (gpen.md §4.4 steps 4-7): decode the offsets
//! against the priors (`utils/box_utils.py`), keep scores above the threshold, sort, and run
//! `py_cpu_nms`. All in f32 with the reference's operation order, so the kept set and its order
//! are the reference's.

use crate::detect::Face;

/// `cfg['variance']`: the centre offsets are scaled by 0.1 of the prior size, the log-size offsets
/// by 0.2.
pub const VARIANCES: [f32; 2] = [0.1, 0.2];
/// `detect()`'s defaults.
pub const NMS_THRESHOLD: f32 = 0.4;
pub const TOP_K: usize = 5000;
pub const KEEP_TOP_K: usize = 750;

/// `decode`: `[x1, y1, x2, y2]` in network-input pixels from a `[cx, cy, w, h]` prior.
pub fn decode_box(loc: &[f32], prior: &[f32; 4], width: f32, height: f32) -> [f32; 4] {
    let cx = prior[0] + loc[0] * VARIANCES[0] * prior[2];
    let cy = prior[1] + loc[1] * VARIANCES[0] * prior[3];
    let w = prior[2] * (loc[2] * VARIANCES[1]).exp();
    let h = prior[3] * (loc[3] * VARIANCES[1]).exp();
    let (x1, y1) = (cx - w / 2.0, cy - h / 2.0);
    // The reference adds the corner to the size in place (`boxes[:, 2:] += boxes[:, :2]`).
    [x1 * width, y1 * height, (w + x1) * width, (h + y1) * height]
}

/// `decode_landm`: five `[x, y]` in network-input pixels.
pub fn decode_landmarks(pre: &[f32], prior: &[f32; 4], width: f32, height: f32) -> [[f32; 2]; 5] {
    std::array::from_fn(|n| {
        let x = prior[0] + pre[2 * n] * VARIANCES[0] * prior[2];
        let y = prior[1] + pre[2 * n + 1] * VARIANCES[0] * prior[3];
        [x * width, y * height]
    })
}

/// `py_cpu_nms` on boxes already sorted by descending score: indices kept, in that order. Areas
/// and overlaps count pixels inclusively (+1), and a box survives with IoU <= `threshold`.
pub fn nms(boxes: &[[f32; 4]], threshold: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let areas: Vec<f32> = boxes.iter().map(area).collect();
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    let mut keep = Vec::new();
    while let Some((&i, rest)) = order.split_first() {
        keep.push(i);
        let a = &boxes[i];
        order = rest
            .iter()
            .copied()
            .filter(|&j| {
                let b = &boxes[j];
                let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
                let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
                let inter = w * h;
                // A NaN overlap is not `<=`, so such a box is dropped, as in numpy.
                inter / (areas[i] + areas[j] - inter) <= threshold
            })
            .collect();
    }
    keep
}

/// The network outputs of one image (`loc` [P*4], `conf` [P*2] after the softmax, `landms`
/// [P*10], row-major) -> faces in network-input pixels, in the reference's output order (NMS
/// order: descending score). `width` x `height` is the network input's size.
pub fn select(
    loc: &[f32],
    conf: &[f32],
    landms: &[f32],
    priors: &[[f32; 4]],
    (width, height): (usize, usize),
    threshold: f32,
) -> Vec<Face> {
    let (w, h) = (width as f32, height as f32);
    let mut cands: Vec<(usize, f32)> = (0..priors.len()).map(|p| (p, conf[2 * p + 1])).filter(|&(_, score)| score > threshold).collect();
    // numpy's argsort is not stable; ties between kept scores do not occur in practice (softmax
    // outputs differ), and here the earlier prior wins.
    cands.sort_by(|a, b| b.1.total_cmp(&a.1));
    cands.truncate(TOP_K);
    let faces: Vec<Face> = cands
        .iter()
        .map(|&(p, score)| Face {
            bbox: decode_box(&loc[4 * p..4 * p + 4], &priors[p], w, h),
            score,
            landmarks: decode_landmarks(&landms[10 * p..10 * p + 10], &priors[p], w, h),
        })
        .collect();
    let boxes: Vec<[f32; 4]> = faces.iter().map(|f| f.bbox).collect();
    nms(&boxes, NMS_THRESHOLD).into_iter().take(KEEP_TOP_K).map(|i| faces[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
    }

    #[test]
    fn zero_offsets_give_the_prior_box() {
        let prior = [0.5, 0.25, 0.1, 0.2];
        let b = decode_box(&[0.0; 4], &prior, 100.0, 200.0);
        assert!(close(&b, &[45.0, 30.0, 55.0, 70.0]), "{b:?}");
        let l = decode_landmarks(&[0.0; 10], &prior, 100.0, 200.0);
        assert!(close(l.as_flattened(), &[50.0; 10]), "{l:?}");
    }

    #[test]
    fn offsets_are_scaled_by_the_variances() {
        let prior = [0.5, 0.5, 0.2, 0.4];
        // Centre x moves by 1 * 0.1 * 0.2 = 0.02; width grows by exp(0.2 * ln 2 / 0.2) = 2.
        let b = decode_box(&[1.0, 0.0, 2f32.ln() / 0.2, 0.0], &prior, 100.0, 100.0);
        assert!(close(&b, &[32.0, 30.0, 72.0, 70.0]), "{b:?}");
        let l = decode_landmarks(&[0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0], &prior, 100.0, 100.0);
        assert!(close(&l[2], &[52.0, 46.0]) && close(&l[0], &[50.0, 50.0]), "{l:?}");
    }

    #[test]
    fn nms_counts_pixels_inclusively() {
        // 10x10-pixel boxes (x2 - x1 + 1 = 10). Overlap of 4 columns: IoU 40 / 160 = 0.25, kept.
        // Overlap of 6 columns: 60 / 140 = 0.43, suppressed. Without the +1 it would be 0.5.
        let boxes = [[0.0, 0.0, 9.0, 9.0], [6.0, 0.0, 15.0, 9.0], [4.0, 0.0, 13.0, 9.0]];
        assert_eq!(nms(&boxes[..2], 0.4), vec![0, 1]);
        assert_eq!(nms(&[boxes[0], boxes[2]], 0.4), vec![0]);
        // A suppressed box suppresses nothing: the middle one goes (0.43 with the first), so the
        // last stays (0.25 with the first), though it overlaps the middle one by 0.67.
        assert_eq!(nms(&[boxes[0], boxes[2], boxes[1]], 0.4), vec![0, 2]);
        assert_eq!(nms(&[], 0.4), Vec::<usize>::new());
    }

    #[test]
    fn nms_keeps_an_iou_equal_to_the_threshold() {
        // 10x10 boxes sharing 5 of 10 columns: IoU 50 / 150 = 1/3.
        let boxes = [[0.0, 0.0, 9.0, 9.0], [5.0, 0.0, 14.0, 9.0]];
        assert_eq!(nms(&boxes, 50.0 / 150.0), vec![0, 1]);
        assert_eq!(nms(&boxes, 0.3), vec![0]);
    }

    #[test]
    fn select_thresholds_sorts_and_suppresses() {
        // Four priors in a 100x100 input: two overlapping, one alone, one below the threshold.
        let priors = [[0.2, 0.2, 0.1, 0.1], [0.21, 0.2, 0.1, 0.1], [0.7, 0.7, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1]];
        let conf = [0.2, 0.8, 0.1, 0.9, 0.05, 0.95, 0.5, 0.5];
        let faces = select(&[0.0; 16], &conf, &[0.0; 40], &priors, (100, 100), 0.6);
        let scores: Vec<f32> = faces.iter().map(|f| f.score).collect();
        assert_eq!(scores, [0.95, 0.9]);
        assert!(close(&faces[1].bbox, &[16.0, 15.0, 26.0, 25.0]), "{:?}", faces[1].bbox);
        // Strictly above: a score equal to the threshold is dropped.
        assert!(select(&[0.0; 16], &conf, &[0.0; 40], &priors, (100, 100), 0.95).is_empty());
    }
}
