//! The batch size that fits: `⌊((free + held) × ratio − fixed) / per_face⌋`, clamped to
//! `[1, max_batch]`, with the arithmetic spelled out for the user. `held` is what our own caching
//! allocator keeps reserved on a CUDA device (the weights, and blocks cached from earlier batches):
//! NVML counts it as used, yet it is ours to use, so it is added back; `fixed` (weights and
//! workspace) is then subtracted once, whether or not the model is loaded yet.

use crate::engine::memory_model::MemoryModel;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// A batch size and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    pub batch: usize,
    /// The memory the decision counted as available: free, plus what our allocator holds.
    pub free: u64,
    /// `free × ratio`: what the run allows itself, model included.
    pub budget: u64,
    /// The arithmetic, e.g. "7.1 GiB free × 0.80 − 0.4 GiB fixed = 5.3 GiB ÷ 0.61 GiB per face = 8".
    pub reason: String,
}

/// Recommends a batch size for `free` bytes of which the user lets us use `ratio` (0..=1, clamped):
/// `batch = ⌊(free × ratio − model.fixed) / model.per_face⌋`, clamped to `[1, max_batch]` (a
/// `max_batch` of 0 counts as 1). One face is always the answer when nothing fits: running is the
/// caller's decision, and the OOM path (split and retry) is the backstop.
///
/// `model.fixed` (the weights and workspace) is always subtracted, so `free` must be measured with
/// the model *not* yet loaded — as the worker does for its first recommendation. Once the model is
/// resident its weights no longer show as free (on the CPU the resident set is not free; on CUDA the
/// allocator has reserved them), and subtracting `fixed` again under-counts by the weights: then
/// pass `free + fixed` or, better, a model whose `fixed` is only the workspace. That choice is the
/// caller's; this function keeps the one formula.
pub fn recommend(free: u64, ratio: f64, model: &MemoryModel, max_batch: usize) -> Recommendation {
    recommend_available(free, 0, ratio, model, max_batch)
}

/// [`recommend`] for a device where our allocator holds `held` bytes reserved besides the `free`
/// ones: the batch may use `(free + held) × ratio − fixed`. The reason names both parts.
pub fn recommend_available(free: u64, held: u64, ratio: f64, model: &MemoryModel, max_batch: usize) -> Recommendation {
    let ratio = if ratio.is_nan() { 0.0 } else { ratio.clamp(0.0, 1.0) };
    let max_batch = max_batch.max(1);
    let available = free.saturating_add(held);
    let budget_f = available as f64 * ratio;
    let budget = budget_f as u64;
    let in_gib = available as f64 >= GIB;
    let gib = |bytes: f64, decimals: usize| amount(bytes, decimals, in_gib);
    let head = if held == 0 {
        format!("{} free × {ratio:.2}", gib(free as f64, 1))
    } else {
        format!("({} free + {} held by gpen-studio) × {ratio:.2}", gib(free as f64, 1), gib(held as f64, 1))
    };
    if budget_f < model.fixed as f64 {
        return Recommendation {
            batch: 1,
            free: available,
            budget,
            reason: format!(
                "{head} = {}: budget below the model's fixed memory ({}); running 1 face at a time",
                gib(budget_f, 1),
                gib(model.fixed as f64, 1)
            ),
        };
    }
    let left = budget_f - model.fixed as f64;
    let head = format!("{head} − {} fixed = {}", gib(model.fixed as f64, 1), gib(left, 1));
    let (fits, arithmetic) = if model.per_face == 0 {
        (usize::MAX, format!("{head}, no memory per face"))
    } else {
        let n = (left / model.per_face as f64).floor();
        let n = if n >= usize::MAX as f64 { usize::MAX } else { n as usize };
        (n, format!("{head} ÷ {} per face = {n}", gib(model.per_face as f64, 2)))
    };
    let (batch, reason) = if fits == 0 {
        (1, format!("{arithmetic} → 1 (minimum)"))
    } else if fits > max_batch {
        (max_batch, format!("{arithmetic} → {max_batch} (max batch)"))
    } else {
        (fits, arithmetic)
    };
    Recommendation { batch, free: available, budget, reason }
}

/// An amount for the reason text: in GiB with `decimals` decimals when the sentence is in GiB
/// (`in_gib`: free is at least 1 GiB), except a non-zero amount under 0.05 GiB, which (like every
/// amount of a sentence about less than 1 GiB) is shown by [`format_bytes`] ("12 MiB").
fn amount(bytes: f64, decimals: usize, in_gib: bool) -> String {
    let bytes = bytes.max(0.0);
    if in_gib && (bytes == 0.0 || bytes >= 0.05 * GIB) { format!("{:.*} GiB", decimals, bytes / GIB) } else { format_bytes(bytes as u64) }
}

/// A size for people: "7.1 GiB", "612 MiB", "12 KiB", "512 B" (binary units).
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else if b >= MIB {
        format!("{:.0} MiB", b / MIB)
    } else if bytes >= 1024 {
        format!("{:.0} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(12 * 1024), "12 KiB");
        assert_eq!(format_bytes(612 << 20), "612 MiB");
        assert_eq!(format_bytes((7.1 * GIB) as u64), "7.1 GiB");
        assert_eq!(format_bytes(1 << 30), "1.0 GiB");
    }
}
