//! The batch size the worker uses: the planner's recommendation, halved on out-of-memory and grown
//! back gradually after successes (the pattern chaiNNer and upscayl-ncnn use for tiles,
//! users.md §c; here for faces).

use crate::pipeline::BatchSizer;

/// Successful calls at a reduced size before the size doubles again.
pub const GROW_AFTER: usize = 3;

#[derive(Debug, Clone)]
pub struct AdaptiveBatch {
    recommended: usize,
    /// Set after an out-of-memory error; lifted again by successes.
    cap: Option<usize>,
    streak: usize,
}

impl AdaptiveBatch {
    pub fn new(recommended: usize) -> Self {
        AdaptiveBatch { recommended: recommended.max(1), cap: None, streak: 0 }
    }

    /// A new recommendation (free memory or the ratio changed); an out-of-memory cap stays.
    pub fn set_recommended(&mut self, recommended: usize) {
        self.recommended = recommended.max(1);
    }

    pub fn recommended(&self) -> usize {
        self.recommended
    }

    pub fn cap(&self) -> Option<usize> {
        self.cap
    }
}

impl BatchSizer for AdaptiveBatch {
    fn next(&mut self) -> usize {
        self.cap.map_or(self.recommended, |c| c.min(self.recommended)).max(1)
    }

    fn succeeded(&mut self, n: usize) {
        let Some(cap) = self.cap else { return };
        if n < cap {
            return; // a short tail batch says nothing about the cap
        }
        self.streak += 1;
        if self.streak >= GROW_AFTER {
            self.streak = 0;
            let grown = cap * 2;
            self.cap = (grown < self.recommended).then_some(grown);
        }
    }

    fn out_of_memory(&mut self, n: usize) -> Option<usize> {
        let smaller = (n / 2).max(1);
        self.cap = Some(smaller);
        self.streak = 0;
        Some(smaller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_oom_then_grows_back_after_successes() {
        let mut b = AdaptiveBatch::new(8);
        assert_eq!(b.next(), 8);
        assert_eq!(b.out_of_memory(8), Some(4));
        assert_eq!(b.next(), 4);
        for _ in 0..GROW_AFTER - 1 {
            b.succeeded(4);
            assert_eq!(b.next(), 4);
        }
        b.succeeded(4);
        assert_eq!(b.next(), 8, "grows back to the recommendation");
        assert_eq!(b.cap(), None);
    }

    #[test]
    fn short_tail_batches_do_not_grow_the_cap_and_recommendations_apply_at_once() {
        let mut b = AdaptiveBatch::new(16);
        b.out_of_memory(16);
        for _ in 0..10 {
            b.succeeded(3);
        }
        assert_eq!(b.next(), 8);
        b.set_recommended(2);
        assert_eq!(b.next(), 2, "a lower ratio takes effect at the next batch");
        b.out_of_memory(2);
        assert_eq!(b.next(), 1);
        assert_eq!(b.out_of_memory(1), Some(1));
    }
}
