//! The one out-of-memory policy, for every network a run calls on a share of its work (GPEN's
//! batches of faces and the parser's batches of masks in `pipeline::gpu`, the upscaler's tiles in
//! `upscale::stage`): free the device's cache, make the share smaller, run the same work again,
//! down to the smallest share; what still does not fit goes to the caller's fallback (GPEN's CPU
//! copy, the rectangle mask) or fails on its own. Each caller only says how its share gets smaller.

use crate::error::RunError;

/// Runs `attempt(share)`; while it runs out of memory, calls `on_oom` (which frees the device's
/// cache) and tries again with `smaller(share)`. Returns the result with the share that worked, or
/// the error with the share it came at: out of memory where there is no smaller share, or any other
/// error at once (only memory is worth a smaller try).
pub fn retry_smaller<S: Copy, T>(
    share: S,
    mut attempt: impl FnMut(S) -> Result<T, RunError>,
    mut on_oom: impl FnMut(),
    mut smaller: impl FnMut(S) -> Option<S>,
) -> Result<(T, S), (RunError, S)> {
    let mut share = share;
    loop {
        match attempt(share) {
            Ok(done) => return Ok((done, share)),
            Err(e) if e.is_oom() => {
                on_oom();
                match smaller(share) {
                    Some(next) => share = next,
                    None => return Err((e, share)),
                }
            }
            Err(e) => return Err((e, share)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_errors_shrink_the_share_until_it_fits_and_other_errors_stop_at_once() {
        let (mut tried, mut freed) = (Vec::new(), 0);
        let fits = retry_smaller(
            8usize,
            |n| {
                tried.push(n);
                if n > 2 { Err(RunError::OutOfMemory(format!("{n}"))) } else { Ok(n * 10) }
            },
            || freed += 1,
            |n| (n > 1).then_some(n / 2),
        );
        assert_eq!(fits.unwrap(), (20, 2));
        assert_eq!((tried, freed), (vec![8, 4, 2], 2));

        let never = retry_smaller(2usize, |n| Err::<(), _>(RunError::OutOfMemory(format!("{n}"))), || {}, |n| (n > 1).then_some(n / 2));
        assert!(matches!(never, Err((RunError::OutOfMemory(_), 1))));
        let broken =
            retry_smaller(4usize, |_| Err::<(), _>(RunError::Torch("device lost".into())), || panic!("not memory"), |n| Some(n / 2));
        assert!(matches!(broken, Err((RunError::Torch(_), 4))));
    }
}
