//! The GPU stage: faces of many photos wait in one queue and go through the restorer in batches
//! whose size a [`BatchSizer`] chooses. This is the one out-of-memory policy of the product: a batch
//! that runs out of memory frees the cache and is retried at the size the sizer says; a face that
//! fails alone goes to the CPU fallback when there is one, and is reported otherwise. A photo leaves
//! the stage as soon as its last face is back.
//!
//! With a face parser, each batch's restored faces get their paste masks here, in the same batch
//! (the parser runs on the restored face, as in GPEN). A mask that fails even for one face alone
//! leaves that face with the feathered rectangle, reported as an event: a face is never lost for
//! its mask.

use super::items::{FaceFailure, RestoredFace};
use super::stages::Prepared;
use super::{BatchSizer, PhotoId};
use crate::mask::FaceMasker;
use crate::restore::FaceRestorer;
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
    photos: HashMap<PhotoId, Waiting>,
    /// (photo, face index) in arrival order.
    queue: VecDeque<(PhotoId, usize)>,
    pub oom_events: usize,
    pub cpu_fallbacks: usize,
    pub mask_fallbacks: usize,
    /// Time in the restorer, and in the masker.
    pub busy: Duration,
    pub mask_busy: Duration,
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
            photos: HashMap::new(),
            queue: VecDeque::new(),
            oom_events: 0,
            cpu_fallbacks: 0,
            mask_fallbacks: 0,
            busy: Duration::ZERO,
            mask_busy: Duration::ZERO,
        }
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
        let mut out = Vec::with_capacity(crops.len());
        let mut size = crops.len();
        let mut i = 0;
        while i < crops.len() {
            let k = size.min(crops.len() - i);
            match self.restorer.restore_batch(&crops[i..i + k]) {
                Ok(faces) => {
                    sizer.succeeded(k);
                    out.extend(faces.into_iter().map(Ok));
                    i += k;
                }
                Err(e) if e.is_oom() => {
                    self.restorer.release_cache();
                    self.oom_events += 1;
                    if k > 1 {
                        if let Some(smaller) = sizer.out_of_memory(k).filter(|&s| s < k) {
                            on_event(GpuEvent::OomRecovered { from: k, to: smaller.max(1) });
                            size = smaller.max(1);
                            continue;
                        }
                        out.extend((0..k).map(|_| Err(FaceFailure::Restorer(e.clone()))));
                        i += k;
                        continue;
                    }
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
                Err(e) => {
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
            return faces.into_iter().map(|r| r.map(|image| RestoredFace { image, mask: None })).collect();
        };
        let ok: Vec<&RgbImage> = faces.iter().filter_map(|r| r.as_ref().ok()).collect();
        let together = if ok.is_empty() { Ok(Vec::new()) } else { masker.masks(&ok) };
        let masks: Vec<Result<Vec<f32>, String>> = match together {
            Ok(m) => m.into_iter().map(Ok).collect(),
            // A lone face that failed for another reason than memory would only fail again.
            Err(e) if ok.len() == 1 && !e.is_oom() => vec![Err(e.to_string())],
            Err(e) => {
                if e.is_oom() {
                    masker.release_cache();
                    self.oom_events += 1;
                }
                ok.iter().map(|f| masker.masks(std::slice::from_ref(f)).map(|mut m| m.remove(0)).map_err(|e| e.to_string())).collect()
            }
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
                Ok(RestoredFace { image, mask })
            })
            .collect()
    }

    /// Takes every photo out of the stage (the run was cancelled): nothing is written for them.
    pub fn drain(&mut self) -> Vec<Prepared> {
        self.queue.clear();
        let mut photos: Vec<Prepared> = self.photos.drain().map(|(_, w)| w.prepared).collect();
        photos.sort_by_key(|p| p.job.id);
        photos
    }
}
