//! Where the CPU stages run. [`Inline`]: each step when it is asked for, waited for (`--workers 1`,
//! the order of a single-threaded loop; detection on a helper thread only for its thread count).
//! [`Threaded`]: read + detect + align workers and paste + encode workers on threads of their own,
//! fed by bounded queues, reporting back on one channel, while the engine's thread keeps the GPU
//! busy. The coordinator treats both alike through [`Stages`]. The upscaler is in neither: it runs
//! on the engine's thread, between a photo's read and its search.

use super::gpu::Completed;
use super::outcome::PhotoFailure;
use super::stages::{self, BackReport, FrontJob, FrontReport, FrontTools, StageContext};
use crossbeam_channel::{Receiver, Select, Sender};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::Scope;
use std::time::Duration;

/// A stage's report to the coordinator.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one message a photo through a channel: size does not matter, a box would cost an allocation
pub enum StageMsg {
    Front(FrontReport),
    Back(BackReport),
}

pub enum Stages<'s> {
    Inline(Inline<'s>),
    Threaded(Threaded),
}

impl Stages<'_> {
    /// Hands a photo to read + detect + align (or, back from the upscaler, to detect + align).
    pub fn front(&mut self, job: FrontJob) {
        match self {
            Stages::Inline(s) => {
                // One step after the other: wait for the detection thread's answer. Should that
                // thread be gone, the photo fails rather than the run waiting for it forever.
                let copy = job.job().clone();
                let sent = s.jobs.as_ref().expect("open until dropped").send(job).is_ok();
                let report = sent.then(|| s.reports.recv().ok()).flatten().unwrap_or_else(|| {
                    let stopped = PhotoFailure::internal(&"the detection thread stopped");
                    FrontReport::ended(copy, super::Outcome::Failed { error: stopped, faces_failed: 0 })
                });
                s.ready.push_back(StageMsg::Front(report));
            }
            Stages::Threaded(s) => {
                // The coordinator keeps at most `front_capacity` photos here, so this never waits.
                let _ = s.jobs.as_ref().expect("open until dropped").send(job);
            }
        }
    }

    /// Hands a photo whose faces are back to paste + encode. Waits while that queue is full (the
    /// writers set the pace then; the GPU has nowhere to put more results).
    pub fn finish(&mut self, completed: Completed) {
        match self {
            Stages::Inline(s) => {
                let report = guarded_finish(completed, s.ctx);
                s.ready.push_back(StageMsg::Back(report));
            }
            Stages::Threaded(s) => {
                let _ = s.finishes.as_ref().expect("open until dropped").send(completed);
            }
        }
    }

    /// A report that is ready now, without waiting.
    pub fn try_next(&mut self) -> Option<StageMsg> {
        match self {
            Stages::Inline(s) => s.ready.pop_front(),
            Stages::Threaded(s) => s.reports.try_recv().ok(),
        }
    }

    /// Waits up to `timeout` for a report; returns `None` early when something arrives on
    /// `interrupt` (the engine's commands), without taking it.
    pub fn wait<T>(&mut self, interrupt: &Receiver<T>, timeout: Duration) -> Option<StageMsg> {
        match self {
            Stages::Inline(s) => s.ready.pop_front(),
            Stages::Threaded(s) => {
                let mut select = Select::new();
                let reports = select.recv(&s.reports);
                select.recv(interrupt);
                match select.ready_timeout(timeout) {
                    Ok(i) if i == reports => s.reports.try_recv().ok(),
                    _ => None,
                }
            }
        }
    }

    /// How many photos may be handed to read + detect + align before their reports come back.
    pub fn front_capacity(&self) -> usize {
        match self {
            Stages::Inline(_) => 1,
            // One in hand and one waiting for each worker, so no worker idles between photos.
            Stages::Threaded(s) => 2 * s.front_workers,
        }
    }

    /// Photos handed to read + detect + align and not yet started are reported cancelled.
    pub fn cancel(&self) {
        if let Stages::Threaded(s) = self {
            s.cancelled.store(true, Ordering::SeqCst);
        }
    }

    /// (read + detect + align, paste + encode) workers; (0, 0) inline.
    pub fn workers(&self) -> (usize, usize) {
        match self {
            Stages::Inline(_) => (0, 0),
            Stages::Threaded(s) => (s.front_workers, s.back_workers),
        }
    }
}

/// libtorch intra-op threads of every thread that detects. One: MTCNN's small convolutions scale
/// poorly (1.5 cores busy for about 1.1× on this 2-core box, docs/BENCHMARKS.md), so workers are the
/// better parallelism; and MTCNN's results depend on the thread count in the last bits (oneDNN and
/// MKL choose their reductions by it), so both modes use the same count and write the same bytes.
pub const DETECT_THREADS: i32 = 1;

/// The stages one step after the other. Detection still runs on a thread of its own, waited for,
/// so that it gets [`DETECT_THREADS`] while GPEN on the engine's thread keeps every core (libtorch's
/// OpenMP thread count is per thread; switching it on one thread would also flush oneDNN's caches).
pub struct Inline<'s> {
    jobs: Option<Sender<FrontJob>>,
    reports: Receiver<FrontReport>,
    ctx: &'s StageContext,
    ready: VecDeque<StageMsg>,
}

impl<'s> Inline<'s> {
    pub fn start<'scope>(scope: &'scope Scope<'scope, 's>, tools: &'s mut FrontTools, ctx: &'s StageContext) -> Self {
        let (jobs_tx, jobs) = crossbeam_channel::bounded::<FrontJob>(1);
        let (report_tx, reports) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("gpen-detect".into())
            .spawn_scoped(scope, move || {
                detect_threads_here();
                for job in jobs {
                    if report_tx.send(guarded_prepare(job, tools, ctx)).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the detection thread");
        Inline { jobs: Some(jobs_tx), reports, ctx, ready: VecDeque::new() }
    }
}

/// The worker threads' ends of the queues. Dropping it closes them, and the workers then end
/// (the enclosing thread scope joins them).
pub struct Threaded {
    jobs: Option<Sender<FrontJob>>,
    finishes: Option<Sender<Completed>>,
    reports: Receiver<StageMsg>,
    cancelled: Arc<AtomicBool>,
    front_workers: usize,
    back_workers: usize,
}

impl Threaded {
    /// Starts one read + detect + align worker per detector and `back_workers` paste + encode
    /// workers inside `scope`. Each detecting worker runs libtorch with [`DETECT_THREADS`] intra-op
    /// threads, set before any work starts.
    pub fn start<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        fronts: Vec<&'env mut FrontTools>,
        ctx: &'env StageContext,
        back_workers: usize,
    ) -> Self {
        let front_workers = fronts.len().max(1);
        let back_workers = back_workers.max(1);
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded::<FrontJob>(2 * front_workers);
        let (finish_tx, finish_rx) = crossbeam_channel::bounded::<Completed>(2 * back_workers);
        let (report_tx, reports) = crossbeam_channel::unbounded();
        let cancelled = Arc::new(AtomicBool::new(false));
        // Every worker sets its thread count before the first photo, while nothing else runs:
        // libtorch's lazy per-thread set-up can reset process-wide settings (MKL's thread count,
        // oneDNN's caches) when `--threads` was given, and must not do so under a running batch.
        let ready = Arc::new(Barrier::new(fronts.len() + 1));
        for (i, tools) in fronts.into_iter().enumerate() {
            let (jobs, reports, cancelled, ready) = (jobs_rx.clone(), report_tx.clone(), cancelled.clone(), ready.clone());
            std::thread::Builder::new()
                .name(format!("gpen-detect-{i}"))
                .spawn_scoped(scope, move || {
                    detect_threads_here();
                    lower_priority();
                    ready.wait();
                    for job in jobs {
                        let report = if cancelled.load(Ordering::SeqCst) {
                            FrontReport::cancelled(job.job().clone())
                        } else {
                            guarded_prepare(job, tools, ctx)
                        };
                        if reports.send(StageMsg::Front(report)).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawn a detection worker");
        }
        for i in 0..back_workers {
            let (finishes, reports) = (finish_rx.clone(), report_tx.clone());
            std::thread::Builder::new()
                .name(format!("gpen-write-{i}"))
                .spawn_scoped(scope, move || {
                    lower_priority();
                    for completed in finishes {
                        if reports.send(StageMsg::Back(guarded_finish(completed, ctx))).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawn a writer");
        }
        ready.wait();
        Threaded { jobs: Some(jobs_tx), finishes: Some(finish_tx), reports, cancelled, front_workers, back_workers }
    }
}

/// Makes libtorch on the calling thread use [`DETECT_THREADS`] intra-op threads, for this thread
/// only: OpenMP's thread count (what ATen and oneDNN use) and MKL's are set thread-locally.
/// `tch::set_num_threads` would set MKL's process-wide count too, and GPEN on the engine's thread
/// would lose its threads in MKL (a quarter slower per 512 face, measured).
fn detect_threads_here() {
    // libtorch initialises a thread's count lazily, from the process-wide value, on its first
    // parallel call; run that first so that it cannot undo what follows.
    let _ = tch::get_num_threads();
    crate::sys::symbols::set_this_thread_math_threads(DETECT_THREADS);
}

/// How much lower than the engine's thread the CPU stage workers run (Linux `nice`, per thread).
/// The GPU stage comes first: on the CPU, GPEN's OpenMP team spins at its barriers while one of its
/// threads waits for a core, and a stage worker holding that core wastes the whole team's time;
/// on a GPU, the thread that launches the batches must not wait behind detection. The workers still
/// get every core the engine's thread leaves idle.
pub const WORKER_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority by [`WORKER_NICE`] (best effort: a system that
/// refuses leaves it as it was, which costs speed, not correctness).
fn lower_priority() {
    crate::sys::process::lower_this_thread_priority(WORKER_NICE);
}

/// [`stages::front`], with a panic turned into that photo's failure (a worker must always report,
/// or the run would wait for it forever).
fn guarded_prepare(job: FrontJob, tools: &FrontTools, ctx: &StageContext) -> FrontReport {
    let copy = job.job().clone();
    catch_unwind(AssertUnwindSafe(|| stages::front(job, tools, ctx))).unwrap_or_else(|panic| {
        FrontReport::ended(copy, super::Outcome::Failed { error: PhotoFailure::internal(&*panic), faces_failed: 0 })
    })
}

fn guarded_finish(completed: Completed, ctx: &StageContext) -> BackReport {
    let id = completed.0.job.id;
    let faces = completed.1.len();
    catch_unwind(AssertUnwindSafe(|| stages::finish(completed.0, completed.1, ctx))).unwrap_or_else(|panic| BackReport {
        id,
        outcome: super::Outcome::Failed { error: PhotoFailure::internal(&*panic), faces_failed: faces },
        after: None,
        times: Default::default(),
    })
}

/// A panic as the message a user sees (the worker thread's crash).
pub fn internal_error(panic: &dyn std::any::Any) -> String {
    PhotoFailure::internal(panic).to_string()
}
