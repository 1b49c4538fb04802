//! Chunked uploads: the part plan (how big each part is so a file fits the provider's
//! limits) and the worker pool that uploads parts in parallel, straight from the
//! re-openable source (no part is buffered in memory).

use crate::error::{Error, Result};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How a file of `size` bytes is cut into parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    pub size: u64,
    pub chunk: u64,
    pub parts: u64,
}

impl PartPlan {
    /// Parts of `chunk` bytes (at least `min_chunk`), raised in steps of `align` so that
    /// no more than `max_parts` are needed.
    pub fn new(size: u64, chunk: u64, min_chunk: u64, max_parts: u64, align: u64) -> PartPlan {
        let fit = size.div_ceil(max_parts.max(1)).next_multiple_of(align.max(1));
        let chunk = chunk.max(min_chunk).max(fit).max(1);
        PartPlan { size, chunk, parts: size.div_ceil(chunk).max(1) }
    }

    /// Offset and length of part `i` (0-based).
    pub fn range(&self, i: u64) -> (u64, u64) {
        let offset = i * self.chunk;
        (offset, self.chunk.min(self.size.saturating_sub(offset)))
    }
}

/// Run `upload(i, offset, len)` for every part `i` not already done (`done[i]` is
/// `Some`), with at most `concurrency` parts in flight; results land in `done`. The first
/// failure stops the others from starting new parts and is returned.
pub fn upload_parts<T: Send>(
    plan: &PartPlan,
    concurrency: usize,
    done: &[Mutex<Option<T>>],
    upload: &(dyn Fn(u64, u64, u64) -> Result<T> + Sync),
) -> Result<()> {
    let next = AtomicU64::new(0);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let workers = (concurrency.max(1) as u64).min(plan.parts);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let i = next.fetch_add(1, Relaxed);
                    if i >= plan.parts {
                        return;
                    }
                    if done[i as usize].lock().map(|r| r.is_some()).unwrap_or(false) {
                        continue; // stored by an interrupted upload this one resumes
                    }
                    let (offset, len) = plan.range(i);
                    match upload(i, offset, len) {
                        Ok(r) => {
                            if let Ok(mut slot) = done[i as usize].lock() {
                                *slot = Some(r);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    match failed.into_inner().map_err(|_| Error::other("lock poisoned"))? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn plans_fit_the_limits() {
        let p = PartPlan::new(100 * MIB, 5 * MIB, 5 * MIB, 10_000, MIB);
        assert_eq!((p.chunk, p.parts, p.range(19)), (5 * MIB, 20, (95 * MIB, 5 * MIB)));
        // 1 TiB in at most 1,000 parts: the chunk grows to a MiB multiple.
        let p = PartPlan::new(1024 * 1024 * MIB, 5 * MIB, 5 * MIB, 1000, MIB);
        assert!(p.parts <= 1000 && p.chunk.is_multiple_of(MIB), "{p:?}");
        assert_eq!(PartPlan::new(0, 5, 5, 10, 1).parts, 1);
        assert_eq!(PartPlan::new(11, 5, 5, 10, 1).range(2), (10, 1));
    }

    #[test]
    fn parts_run_once_each_and_the_first_error_wins() {
        let plan = PartPlan::new(10, 1, 1, 100, 1);
        let done: Vec<Mutex<Option<u64>>> = (0..10).map(|i| Mutex::new((i == 3).then_some(99))).collect();
        upload_parts(&plan, 3, &done, &|i, off, len| {
            assert_eq!((off, len), (i, 1));
            Ok(i * 10)
        })
        .unwrap();
        let got: Vec<u64> = done.iter().map(|d| d.lock().unwrap().unwrap()).collect();
        assert_eq!(got, vec![0, 10, 20, 99, 40, 50, 60, 70, 80, 90]);
        let done: Vec<Mutex<Option<u64>>> = (0..10).map(|_| Mutex::new(None)).collect();
        let e = upload_parts(&plan, 2, &done, &|i, _, _| if i == 4 { Err(Error::other("boom")) } else { Ok(i) });
        assert_eq!(e.unwrap_err().message(), "boom");
    }
}
