//! Box arithmetic of the cascade, in f32 and in facenet-pytorch's operation order: its +1 width
//! conventions differ between stages, and ties in NMS are common (softmax saturates at 1.0), so
//! both the order of operations and the tie-breaking decide which boxes survive (mtcnn.md §3, §5).

/// `[x1, y1, x2, y2]`.
pub type BBox = [f32; 4];

/// P-Net cell (row, col) of a level at `scale` -> its 12x12 window in image coordinates. The
/// division is f32 / f32 as in the reference; f64 moves some floors by one pixel.
pub fn cell_box(row: usize, col: usize, scale: f32) -> BBox {
    let at = |i: usize, off: usize| ((2 * i + off) as f32 / scale).floor();
    [at(col, 1), at(row, 1), at(col, 12), at(row, 12)]
}

/// Stage-1 regression: offsets scaled by the width without +1.
pub fn regress_pnet(b: &BBox, reg: &[f32; 4]) -> BBox {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    [b[0] + reg[0] * w, b[1] + reg[1] * h, b[2] + reg[2] * w, b[3] + reg[3] * h]
}

/// R-Net and O-Net regression (`bbreg`): widths with +1.
pub fn regress(b: &BBox, reg: &[f32; 4]) -> BBox {
    let (w, h) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
    [b[0] + reg[0] * w, b[1] + reg[1] * h, b[2] + reg[2] * w, b[3] + reg[3] * h]
}

/// `rerec`: the square with the same centre and the longer side.
pub fn square(b: &BBox) -> BBox {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

/// The pixels a box is cropped from (`pad`): coordinates truncated toward zero and read 1-based,
/// clipped to the image, as half-open 0-based `(row0, row1, col0, col1)`. `None` when the box
/// lies wholly outside the image (the reference would misalign its lists there; we drop the box).
pub fn crop_window(b: &BBox, width: u32, height: u32) -> Option<(usize, usize, usize, usize)> {
    // `as i64` truncates toward zero and saturates; a NaN becomes 0 and so an empty window.
    let x = (b[0] as i64).max(1);
    let y = (b[1] as i64).max(1);
    let ex = (b[2] as i64).min(width as i64);
    let ey = (b[3] as i64).min(height as i64);
    (ey > y - 1 && ex > x - 1).then(|| ((y - 1) as usize, ey as usize, (x - 1) as usize, ex as usize))
}

/// torchvision `nms`: greedy by score (stable sort, descending), suppressing IoU > `threshold`
/// with areas without +1. Returns the kept indices, highest score first.
///
/// Above 1000 boxes torchvision re-sorts its result with a non-stable sort; the kept set is the same
/// and only the order of equal scores could differ, which was never seen to change an output
/// (mtcnn.md §3.6 A), so that path is not emulated.
pub fn nms(boxes: &[BBox], scores: &[f32], threshold: f64) -> Vec<usize> {
    let order = by_score(scores);
    let area: Vec<f32> = boxes.iter().map(|b| (b[2] - b[0]) * (b[3] - b[1])).collect();
    greedy(&order, |i, j| {
        let (a, b) = (&boxes[i], &boxes[j]);
        let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        let inter = w * h;
        (inter / (area[i] + area[j] - inter)) as f64 > threshold
    })
}

/// The reference's numpy NMS in 'Min' mode (the final stage): overlap is the intersection over the
/// smaller area, both with +1 widths, and boxes with overlap <= `threshold` survive. Equal scores
/// are taken lowest index first, which is what the reference's SIMD argsort did on every test image.
pub fn nms_min(boxes: &[BBox], scores: &[f32], threshold: f32) -> Vec<usize> {
    let order = by_score(scores);
    let area: Vec<f32> = boxes.iter().map(|b| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0)).collect();
    greedy(&order, |i, j| {
        let (a, b) = (&boxes[i], &boxes[j]);
        let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
        let overlap = w * h / area[i].min(area[j]);
        // Written so that a NaN overlap suppresses, as numpy's `o <= threshold` filter does.
        overlap.is_nan() || overlap > threshold
    })
}

/// Indices by score, descending; equal scores keep index order.
fn by_score(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Keeps each box in `order` not yet suppressed and suppresses every later box `suppress` names.
fn greedy(order: &[usize], suppress: impl Fn(usize, usize) -> bool) -> Vec<usize> {
    let mut removed = vec![false; order.len()];
    let mut keep = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if removed[pos] {
            continue;
        }
        keep.push(i);
        for (later, &j) in order.iter().enumerate().skip(pos + 1) {
            if !removed[later] && suppress(i, j) {
                removed[later] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_boxes_divide_in_f32() {
        // 18 / 0.6f32 = 29.999998 in f32 (30 in f64): the reference gets 29.
        assert_eq!(cell_box(0, 3, 0.6)[2], 29.0);
        assert_eq!(cell_box(2, 0, 0.6), [1.0, 8.0, 20.0, 26.0]);
    }

    #[test]
    fn square_keeps_the_centre() {
        assert_eq!(square(&[0.0, 0.0, 10.0, 20.0]), [-5.0, 0.0, 15.0, 20.0]);
    }

    #[test]
    fn crop_windows_are_one_based_and_clipped() {
        // The Solvay example of mtcnn.md §3.7: rows 29..72, columns 1085..1127.
        assert_eq!(crop_window(&[1086.3447, 30.5915, 1127.8016, 72.0484], 1328, 568), Some((29, 72, 1085, 1127)));
        assert_eq!(crop_window(&[-5.7, -3.2, 20.9, 700.0], 1328, 568), Some((0, 568, 0, 20)));
        assert_eq!(crop_window(&[2000.0, 10.0, 2050.0, 60.0], 1328, 568), None);
        assert_eq!(crop_window(&[f32::NAN; 4], 100, 100), None);
    }

    #[test]
    fn nms_is_stable_on_ties_and_strict_on_the_threshold() {
        let boxes = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 30.0]];
        // Box 2 has IoU exactly 0.5 with box 0: not suppressed at 0.5 (strictly greater is required).
        assert_eq!(nms(&boxes, &[0.9, 0.9, 0.8, 0.95], 0.5), vec![3, 0, 2]);
        assert_eq!(nms(&boxes, &[0.9, 0.9, 0.8, 0.95], 0.4), vec![3, 0]);
    }

    #[test]
    fn min_nms_divides_by_the_smaller_area() {
        // The small box lies inside the big one: overlap 1 against its own area.
        let boxes = [[0.0, 0.0, 99.0, 99.0], [10.0, 10.0, 19.0, 19.0], [200.0, 0.0, 209.0, 9.0]];
        assert_eq!(nms_min(&boxes, &[0.8, 0.9, 0.7], 0.7), vec![1, 2]);
        // Ties go to the lower index.
        assert_eq!(nms_min(&boxes[..2], &[0.9, 0.9], 0.7), vec![0]);
    }
}
