//! One run of the engine: the coordinator on the worker's thread. It owns the GPU stage, hands
//! photos to the CPU stages (inline, or on worker threads) as the RAM budget admits them, batches
//! their faces across photos, and turns every stage report into engine events.
//!
//! Which thread issues what: GPEN's batches, and the background upscaler with `--upscale`, are
//! issued only from this thread. Detection and the alignment warp are issued by the thread that
//! prepares the photo (a stage worker, or this thread with `--workers 1`), on the restorer's
//! device: on CUDA, each stage worker's MTCNN copy launches its own kernels (libtorch's caching
//! allocator and the default stream are safe to share across threads, and GPU kernels of
//! detection and GPEN then queue on the device), so the CPU-side parts of detection (decoding,
//! pyramid set-up, box bookkeeping) never stall the batches.
//!
//! On the CPU, libtorch's intra-op threads and the stage workers would fight over the cores: GPEN
//! on this thread keeps the intra-op thread count it started with, and each detecting thread runs
//! one intra-op thread (libtorch's OpenMP thread count is per calling thread; see
//! [`crate::pipeline::runner::DETECT_THREADS`]), so the workers themselves are the parallelism of
//! detection. Paste and encode are plain Rust and use one core each. The upscaler, like GPEN, runs
//! here with every intra-op thread: a lone photo is upscaled on all the cores.

use super::adaptive::AdaptiveBatch;
use super::admission::{Admission, SrPlan};
use super::memory_model::MemoryModel;
use super::planner::Recommendation;
use super::worker::{EngineEvent, Flow, Loaded, Progress, Worker};
use crate::archive::inputs::OutputNamer;
use crate::config::{ResolvedRun, Sizer};
use crate::error::SetupError;
use crate::identity::FaceIdentifier;
use crate::pipeline::budget::{Charge, InFlightBudget};
use crate::pipeline::gpu::{GpuEvent, GpuStage};
use crate::pipeline::runner::{Inline, StageMsg, Stages, Threaded};
use crate::pipeline::stages::{Front, FrontJob, FrontTools, PhotoJob, StageContext};
use crate::pipeline::{BatchSizer, NoRetry, Outcome, PhotoId, Preview, Summary};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tch::Device;

/// How long the coordinator waits for a stage before it looks at its commands and memory again.
const WAIT_SLICE: Duration = Duration::from_millis(200);

/// The batch sizer of a run, as the configuration chooses.
enum RunSizer {
    Planned(AdaptiveBatch),
    Fixed(NoRetry),
}

impl RunSizer {
    fn as_dyn(&mut self) -> &mut dyn BatchSizer {
        match self {
            RunSizer::Planned(a) => a,
            RunSizer::Fixed(f) => f,
        }
    }
}

/// A photo admitted into the run, with what it is charged now.
struct InFlight {
    charge: Charge,
    charged: u64,
}

/// The run's bookkeeping besides the stages themselves.
struct Books {
    summary: Summary,
    progress: Progress,
    budget: InFlightBudget,
    flights: HashMap<PhotoId, InFlight>,
    front_out: usize,
    back_out: usize,
    size: u32,
}

impl Books {
    /// The run's summary: the books' counts with the GPU stage's.
    fn summary_with(self, gpu: &GpuStage) -> Summary {
        let mut summary = self.summary;
        summary.oom_events = gpu.oom_events;
        summary.cpu_fallbacks = gpu.cpu_fallbacks;
        summary.mask_fallbacks = gpu.mask_fallbacks;
        summary.times.restore = gpu.busy;
        summary.times.mask = gpu.mask_busy;
        summary.times.identity = gpu.identity_busy;
        summary.identity_failures = gpu.identity_failures;
        summary.identity_embeddings = gpu.identity_embeddings;
        summary.peak_photos_in_flight = self.budget.peak_photos();
        summary.peak_charged_bytes = self.budget.peak_used();
        summary
    }
}

impl Worker {
    /// Restores everything queued (and what is enqueued meanwhile). Returns Shutdown if asked to.
    pub(super) fn run(&mut self) -> Flow {
        let finish_early = |w: &mut Worker, error: SetupError| {
            w.emit(EngineEvent::ModelError(error));
            w.emit(EngineEvent::Finished(Summary::default()));
            Flow::Continue
        };
        if let Err(e) = self.config.validate() {
            return finish_early(self, SetupError::InvalidSettings(e));
        }
        if let Err(e) = self.load() {
            return finish_early(self, e);
        }
        if let Err(e) = std::fs::create_dir_all(&self.config.out_dir) {
            return finish_early(self, SetupError::OutputFolder { path: self.config.out_dir.clone(), reason: e.to_string() });
        }
        // A killed earlier run may have left temporary files; finished results are kept (resume).
        crate::paths::remove_stale_partials(&self.config.out_dir);
        let mut loaded = self.loaded.take().expect("loaded above");
        let flow = self.run_loaded(&mut loaded);
        // A model change that arrived during the run takes effect now.
        if !loaded.resolved.model_differs(&self.config) {
            self.loaded = Some(loaded);
        }
        flow
    }

    fn run_loaded(&mut self, loaded: &mut Loaded) -> Flow {
        // The settings as they are now, with the choices the loaded models were made by.
        let config = ResolvedRun { config: self.config.clone(), ..loaded.resolved.clone() };
        let workers = config.workers.count();
        let staged = workers > 1;
        if staged {
            while loaded.fronts.len() < workers {
                match self.make_front(&config, loaded.device) {
                    Ok(d) => loaded.fronts.push(d),
                    Err(e) => {
                        self.emit(EngineEvent::ModelError(SetupError::Worker(Box::new(e))));
                        self.emit(EngineEvent::Finished(Summary::default()));
                        return Flow::Continue;
                    }
                }
            }
        }
        let ctx = StageContext::new(&config, loaded.restorer.size(), loaded.device, loaded.upscaler.is_some());
        let capacity = config.ram_budget.unwrap_or_else(|| super::plan::in_flight_capacity(config.memory_ratio));
        let Loaded { restorer, fronts, upscaler, fallback, masker, identity, device, model, sr_per_pixel, .. } = loaded;
        let (device, model) = (*device, model.clone());

        std::thread::scope(|scope| {
            let mut stages = if staged {
                let fronts: Vec<&mut FrontTools> = fronts.iter_mut().take(workers).collect();
                Stages::Threaded(Threaded::start(scope, fronts, &ctx, config.workers.writers()))
            } else {
                Stages::Inline(Inline::start(scope, &mut fronts[0], &ctx))
            };
            let gpu = GpuStage::new(restorer.as_ref(), fallback.as_deref(), masker.as_deref())
                .with_upscaler(upscaler.as_deref().map(|u| u as &dyn crate::upscale::PhotoUpscaler))
                .with_identity(identity.as_deref().map(|i| i as &dyn FaceIdentifier), config.guard(), config.strength);
            let sr = sr_per_pixel.map(|(per_pixel, multiple)| SrPlan { per_pixel, scale: config.upscale.unwrap_or(1), multiple });
            self.coordinate(&mut stages, gpu, &ctx, &config, &model, device, capacity, sr)
            // `stages` is dropped here: its queues close and the scope joins the workers.
        })
    }

    #[allow(clippy::too_many_arguments)] // the run's parts, each owned here for the run's length
    fn coordinate(
        &mut self,
        stages: &mut Stages,
        mut gpu: GpuStage,
        ctx: &StageContext,
        config: &ResolvedRun,
        model: &MemoryModel,
        device: Device,
        capacity: u64,
        sr: Option<SrPlan>,
    ) -> Flow {
        let mut sizer = match config.sizer {
            Sizer::Planned => RunSizer::Planned(AdaptiveBatch::new(1)),
            Sizer::FixedNoRetry(n) => RunSizer::Fixed(NoRetry(n)),
        };
        let mut namer = OutputNamer::new(&config.out_dir, config.output_format().extension());
        let mut admission = Admission::new(config, device, sr);
        let dispatch_first = matches!(stages, Stages::Threaded(_));
        let mut books = Books {
            summary: Summary { ram_budget: capacity, workers: stages.workers().0 + stages.workers().1, ..Summary::default() },
            progress: Progress { photos_total: self.queue.len(), ..Progress::default() },
            budget: InFlightBudget::new(capacity),
            flights: HashMap::new(),
            front_out: 0,
            back_out: 0,
            size: gpu.crop_size(),
        };
        let started = Instant::now();
        let mut last_reason = String::new();
        let mut flow = Flow::Continue;
        loop {
            while let Some(msg) = stages.try_next() {
                self.take(msg, &mut books, &mut gpu);
            }
            match self.checkpoint() {
                Flow::Continue => {}
                stop => {
                    flow = stop;
                    break;
                }
            }
            books.progress.photos_total = books.progress.photos_done + self.queue.len() + books.budget.photos();
            let rec = self.recommend(&mut sizer, model, device);
            if rec.reason != last_reason {
                last_reason = rec.reason.clone();
                self.emit(EngineEvent::Recommendation { batch: rec.batch, reason: rec.reason.clone() });
            }
            let queued = gpu.queued_faces();
            let batch_full = queued > 0 && queued >= sizer.as_dyn().next();
            let next = admission.next(self.queue.front(), &rec, model, &mut |e| self.emit(e));
            // Photos waiting for the upscaler go back to the workers: they count as theirs.
            let fronts = books.front_out + gpu.waiting_to_upscale();
            let admissible = next.as_ref().is_some_and(|n| {
                fronts < stages.front_capacity()
                    && books.budget.admits(n.charge.detecting)
                    // The next photo's detection must not need the memory that faces in flight hold.
                    && (queued == 0 || admission.detection_fits(n.pixels, rec.free))
            });
            let tiles = next.as_ref().and_then(|n| n.tiles);
            let charge = next.as_ref().map_or(Charge { detecting: 0, kept: 0 }, |n| n.charge);
            if admissible && (dispatch_first || !batch_full) {
                self.dispatch(stages, &mut books, &mut namer, charge, tiles);
            } else if batch_full {
                self.restore_batch(stages, &mut books, &mut gpu, &mut sizer);
            } else if gpu.waiting_to_upscale() > 0 && books.front_out < stages.front_capacity() {
                self.upscale_next(stages, &mut books, &mut gpu, ctx);
            } else if books.front_out > 0 {
                self.wait_for_stages(stages, &mut books, &mut gpu);
            } else if queued > 0 {
                // Nothing more is coming soon (the queue is empty, or the next photo waits for
                // memory that only finishing these faces frees): run a partial batch.
                self.restore_batch(stages, &mut books, &mut gpu, &mut sizer);
            } else if books.back_out > 0 {
                self.wait_for_stages(stages, &mut books, &mut gpu);
            } else if next.is_some() {
                // Nothing at all in flight: the photo runs alone whatever the budget says.
                self.dispatch(stages, &mut books, &mut namer, charge, tiles);
            } else {
                break;
            }
            books.progress.update_rates(started.elapsed());
            self.emit(EngineEvent::Progress(books.progress.clone()));
            self.report_memory();
        }
        if flow != Flow::Continue {
            self.cancel_run(stages, &mut books, &mut gpu);
        }
        self.emit(EngineEvent::Progress(books.progress.clone()));
        self.emit(EngineEvent::Finished(books.summary_with(&gpu)));
        if flow == Flow::Shutdown { Flow::Shutdown } else { Flow::Continue }
    }

    /// Admits the queue's first photo: charges it and hands it to read + detect + align.
    fn dispatch(
        &mut self,
        stages: &mut Stages,
        books: &mut Books,
        namer: &mut OutputNamer,
        charge: Charge,
        tiles: Option<crate::upscale::Tiles>,
    ) {
        let Some((id, photo)) = self.queue.pop_front() else { return };
        books.budget.take(charge.detecting);
        books.flights.insert(id, InFlight { charge, charged: charge.detecting });
        books.front_out += 1;
        self.emit(EngineEvent::PhotoStarted { id });
        let output = namer.name(&photo);
        namer.prepare_folder(&output);
        stages.front(FrontJob::Start(PhotoJob { id, input: photo.path, output, tiles }));
    }

    fn restore_batch(&mut self, stages: &mut Stages, books: &mut Books, gpu: &mut GpuStage, sizer: &mut RunSizer) {
        let (result, completed) = gpu.restore_next(sizer.as_dyn(), &mut |e| match e {
            GpuEvent::OomRecovered { from, to } => self.emit(EngineEvent::OomRecovered { from, to }),
            GpuEvent::CpuFallback { id, face } => self.emit(EngineEvent::CpuFallback { id, face }),
            GpuEvent::FaceFailed { id, face, error } => self.emit(EngineEvent::FaceFailed { id, face, error: error.into() }),
            GpuEvent::MaskFallback { id, face, error } => self.emit(EngineEvent::MaskFallback { id, face, error: error.into() }),
            GpuEvent::IdentityUnmeasured { id, face, error } => {
                self.emit(EngineEvent::IdentityUnmeasured { id, face, error: error.into() })
            }
        });
        books.progress.faces_done += result.faces - result.failed;
        for c in completed {
            books.back_out += 1;
            stages.finish(c);
        }
    }

    /// Upscales the photo that has waited longest, on this thread, and hands it back to the
    /// workers to be searched. Commands are taken between the upscaler's blocks, as at any
    /// checkpoint: a pause waits there, and a cancel or shutdown stops the photo (cancelled) and is
    /// kept for the run's next checkpoint.
    fn upscale_next(&mut self, stages: &mut Stages, books: &mut Books, gpu: &mut GpuStage, ctx: &StageContext) {
        let mut stop = || match self.checkpoint() {
            Flow::Continue => false,
            flow => {
                self.interrupted = Some(flow);
                true
            }
        };
        let Some(report) = gpu.upscale_next(ctx, &mut stop) else { return };
        books.summary.times.add(&report.times);
        match report.result {
            Ok(to_search) => {
                let id = to_search.job.id;
                if let Some(r) = report.sr_recovery {
                    self.emit(EngineEvent::SrOomRecovered { id, oom_events: r.oom_events, tile: r.tiles.map(|t| t.size) });
                }
                books.front_out += 1;
                stages.front(FrontJob::Search(to_search));
            }
            Err((job, outcome)) => self.finish_photo(job.id, outcome, None, books),
        }
    }

    fn wait_for_stages(&mut self, stages: &mut Stages, books: &mut Books, gpu: &mut GpuStage) {
        let t = Instant::now();
        let msg = stages.wait(&self.commands, WAIT_SLICE);
        books.summary.gpu_waited += t.elapsed();
        if let Some(msg) = msg {
            self.take(msg, books, gpu);
        }
    }

    /// Folds a stage's report into the run.
    fn take(&mut self, msg: StageMsg, books: &mut Books, gpu: &mut GpuStage) {
        match msg {
            StageMsg::Front(report) => {
                books.front_out -= 1;
                books.summary.times.add(&report.times);
                let id = report.id();
                if let Some(found) = report.found {
                    books.progress.faces_total += found.faces.len();
                    self.emit(EngineEvent::FacesFound { id, faces: found.faces, before: found.before });
                }
                match report.front {
                    Front::Ready(prepared) => {
                        if let Some(f) = books.flights.get_mut(&id) {
                            let kept = f.charge.with_faces(prepared.aligned.len(), books.size);
                            books.budget.recharge(f.charged, kept);
                            f.charged = kept;
                        }
                        gpu.add(*prepared);
                    }
                    Front::Upscale(read) => gpu.add_read(read),
                    Front::Done(_, outcome) => self.finish_photo(id, outcome, None, books),
                }
            }
            StageMsg::Back(report) => {
                books.back_out -= 1;
                books.summary.times.add(&report.times);
                self.finish_photo(report.id, report.outcome, report.after, books);
            }
        }
    }

    /// A photo ended: its charge is given back, it is counted and reported.
    fn finish_photo(&mut self, id: PhotoId, outcome: Outcome, after: Option<Preview>, books: &mut Books) {
        if let Some(f) = books.flights.remove(&id) {
            books.budget.give_back(f.charged);
        }
        books.summary.count(&outcome);
        books.progress.photos_done += 1;
        self.forget(id);
        self.emit(EngineEvent::PhotoEnded { id, outcome, after });
    }

    /// Cancel or shutdown: photos not yet read and faces not yet restored are dropped (nothing is
    /// written for them); the photo each worker holds is finished or dropped, and photos whose
    /// faces are all back are written, so no stage is left with work.
    fn cancel_run(&mut self, stages: &mut Stages, books: &mut Books, gpu: &mut GpuStage) {
        stages.cancel();
        for id in gpu.drain() {
            self.finish_photo(id, Outcome::Cancelled, None, books);
        }
        let never = crossbeam_channel::never::<()>();
        while books.front_out > 0 || books.back_out > 0 {
            let Some(msg) = stages.try_next().or_else(|| stages.wait(&never, WAIT_SLICE)) else { continue };
            match msg {
                StageMsg::Front(report) if matches!(report.front, Front::Ready(_) | Front::Upscale(_)) => {
                    books.front_out -= 1;
                    books.summary.times.add(&report.times);
                    self.finish_photo(report.id(), Outcome::Cancelled, None, books);
                }
                other => self.take(other, books, gpu),
            }
        }
        let dropped: Vec<PhotoId> = self.queue.drain(..).map(|(id, _)| id).collect();
        for id in dropped {
            self.finish_photo(id, Outcome::Cancelled, None, books);
        }
    }

    /// The batch size for the next call, from fresh memory readings and the current ratio.
    fn recommend(&mut self, sizer: &mut RunSizer, model: &MemoryModel, device: Device) -> Recommendation {
        if let RunSizer::Fixed(NoRetry(n)) = sizer {
            let n = *n;
            return Recommendation {
                batch: n,
                free: 0,
                budget: 0,
                reason: format!("fixed at {n} faces, no retry on out-of-memory (benchmark)"),
            };
        }
        let max_age = self.config.monitor_interval;
        let available = self.monitor.as_ref().and_then(|m| {
            m.refresh_if_older(max_age);
            m.planning_available()
        });
        let rec = super::plan::plan(available, device == Device::Cpu, &self.config, model);
        if let RunSizer::Planned(a) = sizer {
            a.set_recommended(rec.batch);
        }
        rec
    }
}
