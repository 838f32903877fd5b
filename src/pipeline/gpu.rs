//! The GPU stage: faces of many photos wait in one queue and go through the restorer in batches
//! whose size a [`BatchSizer`] chooses. Running out of memory follows the run's one policy
//! ([`crate::oom`]): a batch that runs out of memory frees the cache and is retried at the size the
//! sizer says; a face that fails alone goes to the CPU fallback when there is one, and is reported
//! otherwise. A photo leaves the stage as soon as its last face is back.
//!
//! With background super-resolution, the run's one upscaler is here too: a photo read by a worker
//! waits here for it ([`GpuStage::upscale_next`]) before its faces are searched, so the device has
//! one owner and, on the CPU, the upscaler gets every core as GPEN does.
//!
//! With a face parser, each batch's restored faces get their paste masks here, in the same batch
//! (the parser runs on the restored face, as in GPEN). A mask that fails even for one face alone
//! leaves that face with the feathered rectangle, reported as an event: a face is never lost for
//! its mask.
//!
//! With the identity network, each batch's faces are then measured as they will be pasted (the
//! guard softening those below its floor, [`crate::identity::guard`]), again in one call per
//! batch; a face whose measurement fails is pasted as restored and reported, never lost.

use super::items::{FaceFailure, RestoredFace};
use super::stages::{Prepared, ReadPhoto, StageContext, UpscaleReport};
use super::{BatchSizer, PhotoId};
use crate::error::Interrupt;
use crate::identity::guard::{self, FaceIdentifier, FaceIdentity, Guard, Measure};
use crate::mask::FaceMasker;
use crate::restore::FaceRestorer;
use crate::upscale::PhotoUpscaler;
use image::RgbImage;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What happened during a batch, for the engine's events.
#[derive(Debug)]
pub enum GpuEvent<'a> {
    /// A batch ran out of memory and is retried with fewer faces.
    OomRecovered {
        from: usize,
        to: usize,
    },
    /// A face that ran out of memory alone on the GPU was restored on the CPU instead.
    CpuFallback {
        id: PhotoId,
        face: usize,
    },
    FaceFailed {
        id: PhotoId,
        face: usize,
        error: &'a str,
    },
    /// The parser could not make this face's mask; it is pasted with the feathered rectangle.
    MaskFallback {
        id: PhotoId,
        face: usize,
        error: &'a str,
    },
    /// The identity network could not measure this face; it is pasted as restored.
    IdentityUnmeasured {
        id: PhotoId,
        face: usize,
        error: &'a str,
    },
}

/// A photo whose faces are all back: each restored, or the error it failed with.
pub type Completed = (Prepared, Vec<Result<RestoredFace, FaceFailure>>);

struct Waiting {
    prepared: Prepared,
    restored: Vec<Option<Result<RestoredFace, FaceFailure>>>,
    left: usize,
}

pub struct GpuStage<'a> {
    restorer: &'a dyn FaceRestorer,
    /// Restores a face that runs out of memory alone on the GPU (a CPU copy of the model).
    fallback: Option<&'a dyn FaceRestorer>,
    masker: Option<&'a dyn FaceMasker>,
    upscaler: Option<&'a dyn PhotoUpscaler>,
    /// Measures each face as pasted (at its own strength or the run's `strength`), with the guard
    /// when there is a floor.
    identity: Option<&'a dyn FaceIdentifier>,
    guard: Option<Guard>,
    strength: f32,
    /// Photos read and waiting for the upscaler, in arrival order.
    to_upscale: VecDeque<Box<ReadPhoto>>,
    photos: HashMap<PhotoId, Waiting>,
    /// (photo, face index) in arrival order.
    queue: VecDeque<(PhotoId, usize)>,
    pub oom_events: usize,
    pub cpu_fallbacks: usize,
    pub mask_fallbacks: usize,
    pub identity_failures: usize,
    pub identity_embeddings: usize,
    /// Time in the restorer, in the masker and in the identity measurements.
    pub busy: Duration,
    pub mask_busy: Duration,
    pub identity_busy: Duration,
}

/// One batch's result: the faces it ran and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchResult {
    pub faces: usize,
    pub failed: usize,
}

impl<'a> GpuStage<'a> {
    pub fn new(restorer: &'a dyn FaceRestorer, fallback: Option<&'a dyn FaceRestorer>, masker: Option<&'a dyn FaceMasker>) -> Self {
        GpuStage {
            restorer,
            fallback,
            masker,
            upscaler: None,
            identity: None,
            guard: None,
            strength: 1.0,
            to_upscale: VecDeque::new(),
            photos: HashMap::new(),
            queue: VecDeque::new(),
            oom_events: 0,
            cpu_fallbacks: 0,
            mask_fallbacks: 0,
            identity_failures: 0,
            identity_embeddings: 0,
            busy: Duration::ZERO,
            mask_busy: Duration::ZERO,
            identity_busy: Duration::ZERO,
        }
    }

    /// The run's identity network (`None`: faces are not measured), its guard and the strength
    /// faces are pasted at.
    pub fn with_identity(self, identity: Option<&'a dyn FaceIdentifier>, guard: Option<Guard>, strength: f32) -> Self {
        GpuStage { identity, guard, strength, ..self }
    }

    /// The run's upscaler, for the photos handed to [`GpuStage::add_read`].
    pub fn with_upscaler(self, upscaler: Option<&'a dyn PhotoUpscaler>) -> Self {
        GpuStage { upscaler, ..self }
    }

    /// Queues a read photo for the upscaler.
    pub fn add_read(&mut self, read: Box<ReadPhoto>) {
        self.to_upscale.push_back(read);
    }

    /// Photos waiting for the upscaler.
    pub fn waiting_to_upscale(&self) -> usize {
        self.to_upscale.len()
    }

    /// Upscales the photo that has waited longest (on this thread: the device's owner), asking
    /// `stop` between the network's steps (a stop ends the photo cancelled). A panic is that
    /// photo's failure, as on the stage workers.
    pub fn upscale_next(&mut self, ctx: &StageContext, stop: &mut Interrupt<'_>) -> Option<UpscaleReport> {
        let read = self.to_upscale.pop_front()?;
        let job = read.job.clone();
        let Some(upscaler) = self.upscaler else {
            let error = super::PhotoFailure::internal(&"a photo waits for an upscaler the run does not have");
            return Some(UpscaleReport::ended(job, super::Outcome::Failed { error, faces_failed: 0 }));
        };
        let run = std::panic::AssertUnwindSafe(|| super::stages::upscale(*read, upscaler, ctx, stop));
        Some(std::panic::catch_unwind(run).unwrap_or_else(|panic| {
            UpscaleReport::ended(job, super::Outcome::Failed { error: super::PhotoFailure::internal(&*panic), faces_failed: 0 })
        }))
    }

    /// Queues a photo's faces (it must have at least one).
    pub fn add(&mut self, prepared: Prepared) {
        let id = prepared.job.id;
        let n = prepared.aligned.len();
        debug_assert!(n > 0, "photos without faces never reach the GPU");
        self.queue.extend((0..n).map(|f| (id, f)));
        self.photos.insert(id, Waiting { prepared, restored: (0..n).map(|_| None).collect(), left: n });
    }

    /// Side of the restorer's square crops.
    pub fn crop_size(&self) -> u32 {
        self.restorer.size()
    }

    pub fn queued_faces(&self) -> usize {
        self.queue.len()
    }

    pub fn photos(&self) -> usize {
        self.photos.len()
    }

    /// Restores the next batch of queued faces (as many as `sizer` asks for) and returns the photos
    /// it completed, in the order they completed.
    pub fn restore_next(&mut self, sizer: &mut dyn BatchSizer, on_event: &mut dyn FnMut(GpuEvent)) -> (BatchResult, Vec<Completed>) {
        let n = sizer.next().max(1).min(self.queue.len());
        if n == 0 {
            return (BatchResult { faces: 0, failed: 0 }, Vec::new());
        }
        let batch: Vec<(PhotoId, usize)> = self.queue.drain(..n).collect();
        let t = Instant::now();
        let faces = self.run_batch(&batch, sizer, on_event);
        self.busy += t.elapsed();
        let t = Instant::now();
        let results = self.add_masks(&batch, faces, on_event);
        self.mask_busy += t.elapsed();
        let t = Instant::now();
        let results = self.add_identity(&batch, results, on_event);
        self.identity_busy += t.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        let mut completed = Vec::new();
        for ((id, f), result) in batch.into_iter().zip(results) {
            if let Err(error) = &result {
                on_event(GpuEvent::FaceFailed { id, face: f, error: &error.to_string() });
            }
            let waiting = self.photos.get_mut(&id).expect("queued faces belong to waiting photos");
            waiting.restored[f] = Some(result);
            waiting.left -= 1;
            if waiting.left == 0 {
                let w = self.photos.remove(&id).expect("completed once");
                completed.push((w.prepared, w.restored.into_iter().map(|r| r.expect("every face is back")).collect()));
            }
        }
        (BatchResult { faces: n, failed }, completed)
    }

    /// Runs the faces of `batch`, shrinking the call size on out-of-memory as `sizer` says; a
    /// single face that still does not fit goes to the fallback restorer when there is one.
    fn run_batch(
        &mut self,
        batch: &[(PhotoId, usize)],
        sizer: &mut dyn BatchSizer,
        on_event: &mut dyn FnMut(GpuEvent),
    ) -> Vec<Result<RgbImage, FaceFailure>> {
        let crops: Vec<&RgbImage> = batch.iter().map(|(id, f)| &self.photos[id].prepared.aligned[*f].crop).collect();
        let restorer = self.restorer;
        let mut out = Vec::with_capacity(crops.len());
        let mut size = crops.len();
        let mut i = 0;
        while i < crops.len() {
            let mut ooms = 0;
            let tried = crate::oom::retry_smaller(
                size.min(crops.len() - i),
                |k| restorer.restore_batch(&crops[i..i + k]),
                || {
                    restorer.release_cache();
                    ooms += 1;
                },
                // Fewer faces, as the sizer says; one face is the smallest share (its fallback follows).
                |k| {
                    if k <= 1 {
                        return None;
                    }
                    let smaller = sizer.out_of_memory(k).filter(|&s| s < k)?.max(1);
                    on_event(GpuEvent::OomRecovered { from: k, to: smaller });
                    Some(smaller)
                },
            );
            self.oom_events += ooms;
            match tried {
                Ok((faces, k)) => {
                    sizer.succeeded(k);
                    out.extend(faces.into_iter().map(Ok));
                    i += k;
                    size = k;
                }
                // One face that does not fit alone: the fallback's.
                Err((e, 1)) if e.is_oom() => {
                    let (id, face) = batch[i];
                    let result = match self.fallback {
                        Some(cpu) => match cpu.restore_batch(&crops[i..i + 1]) {
                            Ok(mut restored) => {
                                self.cpu_fallbacks += 1;
                                on_event(GpuEvent::CpuFallback { id, face });
                                Ok(restored.remove(0))
                            }
                            Err(cpu_err) => Err(FaceFailure::AlsoOnCpu { device: e.clone(), cpu: cpu_err }),
                        },
                        None => Err(FaceFailure::Restorer(e.clone())),
                    };
                    out.push(result);
                    i += 1;
                }
                // Out of memory with no smaller batch allowed, or another failure: these faces fail.
                Err((e, k)) => {
                    out.extend((0..k).map(|_| Err(FaceFailure::Restorer(e.clone()))));
                    i += k;
                }
            }
        }
        out
    }

    /// The paste masks of a batch's restored faces (all in one call, or one by one when that fails).
    fn add_masks(
        &mut self,
        batch: &[(PhotoId, usize)],
        faces: Vec<Result<RgbImage, FaceFailure>>,
        on_event: &mut dyn FnMut(GpuEvent),
    ) -> Vec<Result<RestoredFace, FaceFailure>> {
        let Some(masker) = self.masker else {
            return faces.into_iter().map(|r| r.map(|image| RestoredFace { image, mask: None, identity: None })).collect();
        };
        let ok: Vec<&RgbImage> = faces.iter().filter_map(|r| r.as_ref().ok()).collect();
        // The batch's masks in one call; out of memory, one face a call (each face then on its own:
        // a face whose mask fails alone gets the rectangle).
        let one_by_one =
            || ok.iter().map(|f| masker.masks(std::slice::from_ref(f)).map(|mut m| m.remove(0)).map_err(|e| e.to_string())).collect();
        let mut ooms = 0;
        let tried = crate::oom::retry_smaller(
            ok.len(),
            |n| match n {
                0 => Ok(Vec::new()),
                1 if ok.len() > 1 => Ok(one_by_one()),
                _ => masker.masks(&ok).map(|m| m.into_iter().map(Ok).collect()),
            },
            || {
                masker.release_cache();
                ooms += 1;
            },
            |n| (n > 1).then_some(1),
        );
        self.oom_events += ooms;
        let masks: Vec<Result<Vec<f32>, String>> = match tried {
            Ok((masks, _)) => masks,
            // A lone face that failed for another reason than memory would only fail again.
            Err((e, _)) if ok.len() == 1 && !e.is_oom() => vec![Err(e.to_string())],
            // A batch that failed for another reason, or a lone face out of memory (its cache now
            // freed): one face a call.
            Err(_) => one_by_one(),
        };
        let mut masks = masks.into_iter();
        faces
            .into_iter()
            .zip(batch)
            .map(|(r, &(id, face))| {
                let image = r?;
                let mask = match masks.next().expect("one mask per restored face") {
                    Ok(m) => Some(m),
                    Err(error) => {
                        self.mask_fallbacks += 1;
                        on_event(GpuEvent::MaskFallback { id, face, error: &error });
                        None
                    }
                };
                Ok(RestoredFace { image, mask, identity: None })
            })
            .collect()
    }

    /// Each restored face of a batch measured as it will be pasted (and softened by the guard),
    /// all in one call; out of memory, one face a call; a face that still fails keeps no identity
    /// and is reported.
    fn add_identity(
        &mut self,
        batch: &[(PhotoId, usize)],
        mut results: Vec<Result<RestoredFace, FaceFailure>>,
        on_event: &mut dyn FnMut(GpuEvent),
    ) -> Vec<Result<RestoredFace, FaceFailure>> {
        let Some(identifier) = self.identity else { return results };
        let ok: Vec<usize> = (0..results.len()).filter(|&k| results[k].is_ok()).collect();
        let measured: Vec<Result<FaceIdentity, String>> = {
            let (photos, guard) = (&self.photos, self.guard);
            let crop = |k: usize| {
                let (id, f) = batch[k];
                let p = &photos[&id].prepared;
                (&p.aligned[f].crop, p.faces[f].width().min(p.faces[f].height()))
            };
            // Each face's own strength (the window's, a faces file's), else the run's.
            let asked = |k: usize| {
                let (id, f) = batch[k];
                photos[&id].prepared.strengths.get(f).copied().unwrap_or(self.strength)
            };
            let restored = |k: usize| &results[k].as_ref().expect("only restored faces are measured").image;
            let pasted = |i: usize, s: f32| {
                let (original, box_side) = crop(ok[i]);
                crate::pipeline::paste::pasted_face(restored(ok[i]), original, box_side, s)
            };
            let of = |which: &[usize]| -> Result<guard::Measured, crate::identity::IdentityError> {
                let subset = |i: usize, s: f32| pasted(which[i], s);
                let m = Measure {
                    originals: which.iter().map(|&i| crop(ok[i]).0).collect(),
                    asked: which.iter().map(|&i| asked(ok[i])).collect(),
                    pasted: &subset,
                };
                guard::measure(identifier, &m, guard)
            };
            let all: Vec<usize> = (0..ok.len()).collect();
            match of(&all) {
                Ok(m) => {
                    self.identity_embeddings += m.embeddings;
                    m.faces.into_iter().map(Ok).collect()
                }
                Err(e) if e.is_oom() && ok.len() > 1 => {
                    identifier.release_cache();
                    self.oom_events += 1;
                    (0..ok.len())
                        .map(|i| {
                            let m = of(&[i]).map_err(|e| e.to_string())?;
                            self.identity_embeddings += m.embeddings;
                            Ok(m.faces[0])
                        })
                        .collect()
                }
                Err(e) => ok.iter().map(|_| Err(e.to_string())).collect(),
            }
        };
        for (&k, m) in ok.iter().zip(measured) {
            match m {
                Ok(identity) => results[k].as_mut().expect("restored").identity = Some(identity),
                Err(error) => {
                    let (id, face) = batch[k];
                    self.identity_failures += 1;
                    on_event(GpuEvent::IdentityUnmeasured { id, face, error: &error });
                }
            }
        }
        results
    }

    /// Takes every photo out of the stage, waiting for the upscaler or for faces (the run was
    /// cancelled): nothing is written for them. Their ids, in order.
    pub fn drain(&mut self) -> Vec<PhotoId> {
        self.queue.clear();
        let mut ids: Vec<PhotoId> = self.photos.drain().map(|(id, _)| id).chain(self.to_upscale.drain(..).map(|r| r.job.id)).collect();
        ids.sort();
        ids
    }
}
