//! How much memory the device has free right now: probes (NVML for an NVIDIA GPU, `/proc` for system
//! RAM) and a [`MemoryMonitor`] that samples one on a background thread, keeps a bounded history
//! for the gauge and a smoothed free value for the batch planner.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The device name a CPU sample carries (and the key of CPU calibrations).
pub const CPU_DEVICE_NAME: &str = "CPU (system RAM)";

/// One reading of a device's memory. All sizes are bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySample {
    pub taken: Instant,
    /// "NVIDIA GeForce RTX 3060", or [`CPU_DEVICE_NAME`].
    pub device: String,
    pub cpu_mode: bool,
    pub total: u64,
    pub free: u64,
    /// CUDA: bytes libtorch's caching allocator has reserved on this device for this process (the
    /// CUDA context itself, a few hundred MiB, is not included and shows under `used_by_others`);
    /// CPU: this process's resident set.
    pub used_by_us: u64,
    /// `total - free - used_by_us`, saturating at 0.
    pub used_by_others: u64,
    /// Bytes our caching allocator holds reserved that the next batch can reuse (CUDA: libtorch's
    /// reserved memory, weights included; 0 on the CPU, where freed memory goes back to the system).
    /// The planner counts `free + held` as available to us.
    pub held: u64,
    /// GPU utilisation in percent over the driver's last sample period; `None` on the CPU.
    pub utilization: Option<u32>,
}

impl MemorySample {
    /// Builds a sample, deriving `used_by_others`.
    pub fn new(device: String, cpu_mode: bool, total: u64, free: u64, used_by_us: u64, utilization: Option<u32>) -> Self {
        let used_by_others = total.saturating_sub(free).saturating_sub(used_by_us);
        MemorySample { taken: Instant::now(), device, cpu_mode, total, free, used_by_us, used_by_others, held: 0, utilization }
    }

    /// The same sample with `held` bytes reserved by our allocator.
    pub fn holding(mut self, held: u64) -> Self {
        self.held = held;
        self
    }

    /// What a batch may draw on: free memory plus what our allocator holds.
    pub fn available(&self) -> u64 {
        self.free.saturating_add(self.held)
    }
}

/// Why a memory reading could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No NVIDIA GPU can be read (no driver, no device): the reason.
    #[error("no NVIDIA GPU ({0})")]
    NoGpu(String),
    /// NVML answered with an error.
    #[error("{0}")]
    Nvml(String),
    /// The kernel's memory figures (`/proc`) could not be read.
    #[error("{0}")]
    Proc(String),
}

/// A source of [`MemorySample`]s for one device.
pub trait MemoryProbe: Send {
    fn sample(&mut self) -> Result<MemorySample, ProbeError>;
}

// ---------------------------------------------------------------------------------------------
// NVML

/// The process's NVML ([`crate::sys::nvml`]); without it there is no NVIDIA GPU to read.
pub fn nvml() -> Result<&'static nvml_wrapper::Nvml, ProbeError> {
    crate::sys::nvml::nvml().map_err(|e| ProbeError::NoGpu(e.to_string()))
}

/// Whole-device memory and utilisation of an NVIDIA GPU through NVML, plus this process's share from
/// libtorch's allocator.
///
/// Device order: NVML numbers GPUs in PCI bus order, CUDA "fastest first" unless
/// `CUDA_DEVICE_ORDER=PCI_BUS_ID`; libtorch does not expose a device's PCI bus id, so matching is
/// done as follows. With one NVIDIA GPU the two agree. With several, an entry of
/// `CUDA_VISIBLE_DEVICES` given as a UUID (`GPU-…`) is looked up by UUID, and an integer entry (or
/// the CUDA index itself when the variable is unset) is taken as the NVML index — exact when
/// `CUDA_DEVICE_ORDER=PCI_BUS_ID` is set or the GPUs are all the same model, which covers the
/// machines this app targets.
pub struct NvmlProbe {
    device: nvml_wrapper::Device<'static>,
    name: String,
    cuda_index: usize,
}

impl NvmlProbe {
    pub fn new(cuda_index: usize) -> Result<NvmlProbe, ProbeError> {
        let nvml = nvml()?;
        let count = nvml.device_count().map_err(|e| ProbeError::Nvml(format!("NVML cannot count GPUs: {e}")))?;
        if count == 0 {
            return Err(ProbeError::NoGpu("NVML reports 0 devices".into()));
        }
        let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
        let entry = visible
            .as_deref()
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .and_then(|list| list.get(cuda_index).map(|s| s.to_string()));
        let device = match entry.as_deref() {
            Some(uuid) if uuid.starts_with("GPU-") || uuid.starts_with("MIG-") => nvml.device_by_uuid(uuid),
            Some(n) => match n.parse::<u32>() {
                Ok(i) => nvml.device_by_index(i),
                Err(_) => return Err(ProbeError::Nvml(format!("cannot match CUDA_VISIBLE_DEVICES entry '{n}' to an NVML device"))),
            },
            None if count == 1 => nvml.device_by_index(0),
            None => nvml.device_by_index(cuda_index as u32),
        }
        .map_err(|e| ProbeError::Nvml(format!("NVML has no device for cuda:{cuda_index} ({count} NVIDIA GPU(s)): {e}")))?;
        let name = device.name().unwrap_or_else(|_| format!("NVIDIA GPU cuda:{cuda_index}"));
        Ok(NvmlProbe { device, name, cuda_index })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl MemoryProbe for NvmlProbe {
    fn sample(&mut self) -> Result<MemorySample, ProbeError> {
        let info = self.device.memory_info().map_err(|e| ProbeError::Nvml(format!("NVML memory_info on {}: {e}", self.name)))?;
        let utilization = self.device.utilization_rates().ok().map(|u| u.gpu);
        // Before libtorch has touched the device the shim errors; nothing is ours then.
        let ours = crate::sys::memory::allocator_stats(self.cuda_index).map(|s| s.reserved_current.max(0) as u64).unwrap_or(0);
        Ok(MemorySample::new(self.name.clone(), false, info.total, info.free, ours, utilization).holding(ours))
    }
}

// ---------------------------------------------------------------------------------------------
// System RAM

/// System RAM as seen by this process: `/proc/meminfo` (`MemTotal`, `MemAvailable`), our resident
/// set, and the process's address-space limit (`RLIMIT_AS`), which caps both total and free: the
/// benchmark emulates a small device with `ulimit -v`, and the planner must see that limit.
#[derive(Debug, Default)]
pub struct SystemRamProbe {
    _private: (),
}

impl SystemRamProbe {
    pub fn new() -> Self {
        SystemRamProbe { _private: () }
    }
}

impl MemoryProbe for SystemRamProbe {
    fn sample(&mut self) -> Result<MemorySample, ProbeError> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|e| ProbeError::Proc(format!("reading /proc/meminfo: {e}")))?;
        let mem_total = kib_field(&meminfo, "MemTotal:").ok_or_else(|| ProbeError::Proc("/proc/meminfo has no MemTotal".into()))?;
        let mem_available = kib_field(&meminfo, "MemAvailable:")
            .or_else(|| kib_field(&meminfo, "MemFree:"))
            .ok_or_else(|| ProbeError::Proc("/proc/meminfo has no MemAvailable".into()))?;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let vm_size = kib_field(&status, "VmSize:").unwrap_or(0);
        let (total, free) = apply_address_space_limit(mem_total, mem_available, crate::sys::process::address_space_limit(), vm_size);
        let rss = crate::sys::memory::process_rss().map(|r| r.0).unwrap_or(0);
        Ok(MemorySample::new(CPU_DEVICE_NAME.into(), true, total, free, rss, None))
    }
}

/// A `kB` field of a `/proc` file, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|k| k * 1024)
}

/// `(total, free)` of system RAM under an address-space limit: `total = min(MemTotal, limit)`,
/// `free = min(MemAvailable, limit - VmSize)` (saturating). Without a limit the kernel's figures.
pub fn apply_address_space_limit(mem_total: u64, mem_available: u64, limit: Option<u64>, vm_size: u64) -> (u64, u64) {
    match limit {
        None => (mem_total, mem_available),
        Some(limit) => (mem_total.min(limit), mem_available.min(limit.saturating_sub(vm_size))),
    }
}

/// A probe that cannot read anything and says why (a CUDA device without NVML, say).
struct FailingProbe(ProbeError);

impl MemoryProbe for FailingProbe {
    fn sample(&mut self) -> Result<MemorySample, ProbeError> {
        Err(self.0.clone())
    }
}

/// The probe for a device: NVML for `Cuda(i)` (or, where NVML cannot be loaded, a probe whose every
/// sample is that error), system RAM for the CPU.
pub fn probe_for(device: tch::Device) -> Box<dyn MemoryProbe> {
    match device {
        tch::Device::Cpu => Box::new(SystemRamProbe::new()),
        tch::Device::Cuda(i) => match NvmlProbe::new(i) {
            Ok(p) => Box::new(p),
            Err(e) => Box::new(FailingProbe(e)),
        },
        other => Box::new(FailingProbe(ProbeError::Nvml(format!("no memory probe for device {other:?}")))),
    }
}

/// The name samples of `device` carry: the GPU's NVML name (`cuda:N` where NVML is unavailable) or
/// [`CPU_DEVICE_NAME`]. Calibrations are stored under this name.
pub fn device_label(device: tch::Device) -> String {
    match device {
        tch::Device::Cpu => CPU_DEVICE_NAME.into(),
        tch::Device::Cuda(i) => NvmlProbe::new(i).map(|p| p.name).unwrap_or_else(|_| format!("cuda:{i}")),
        other => format!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Monitor

/// How many recent samples the smoothed free value is the median of.
pub const SMOOTHING_WINDOW: usize = 5;
/// How far back the history reaches.
pub const HISTORY_SPAN: Duration = Duration::from_secs(600);
/// Hard cap on the history length (protects against a tiny interval).
const HISTORY_MAX: usize = 10_000;

struct State {
    probe: Box<dyn MemoryProbe>,
    history: VecDeque<MemorySample>,
    last_error: Option<String>,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking probe must not take the monitor down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn take_sample(&mut self) -> Option<MemorySample> {
        match self.probe.sample() {
            Ok(s) => {
                self.last_error = None;
                self.history.push_back(s.clone());
                while self.history.len() > HISTORY_MAX
                    || self.history.front().is_some_and(|f| s.taken.duration_since(f.taken) > HISTORY_SPAN)
                {
                    self.history.pop_front();
                }
                Some(s)
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                None
            }
        }
    }
}

/// Samples a [`MemoryProbe`] every `interval` on a background thread (or only on demand, see
/// [`MemoryMonitor::manual`]). Cheap to share: every method takes `&self`.
pub struct MemoryMonitor {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    interval: Option<Duration>,
}

impl MemoryMonitor {
    /// The default sampling interval.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

    /// Starts sampling `probe` now and then every `interval` on a thread named `memory-monitor`.
    pub fn start(probe: Box<dyn MemoryProbe>, interval: Duration) -> Self {
        let shared = Self::shared(probe);
        let worker = Arc::clone(&shared);
        let interval = interval.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name("memory-monitor".into())
            .spawn(move || {
                let mut state = worker.lock();
                while !state.stopping {
                    state.take_sample();
                    let deadline = Instant::now() + interval;
                    while !state.stopping {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        state = worker.wake.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
                    }
                }
            })
            .expect("spawning the memory monitor thread");
        MemoryMonitor { shared, thread: Mutex::new(Some(thread)), interval: Some(interval) }
    }

    /// A monitor without a thread: samples are taken only by [`refresh_if_older`](Self::refresh_if_older)
    /// and [`sample_now`](Self::sample_now) (tests, command-line tools).
    pub fn manual(probe: Box<dyn MemoryProbe>) -> Self {
        MemoryMonitor { shared: Self::shared(probe), thread: Mutex::new(None), interval: None }
    }

    fn shared(probe: Box<dyn MemoryProbe>) -> Arc<Shared> {
        let state = State { probe, history: VecDeque::new(), last_error: None, stopping: false };
        Arc::new(Shared { state: Mutex::new(state), wake: Condvar::new() })
    }

    /// The background interval, `None` for a manual monitor.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The most recent successful sample.
    pub fn latest(&self) -> Option<MemorySample> {
        self.shared.lock().history.back().cloned()
    }

    /// The median free memory of the last [`SMOOTHING_WINDOW`] samples: one outlier reading (a
    /// transient allocation by another program, a glitch) does not move it, while a lasting change
    /// shows after `SMOOTHING_WINDOW / 2 + 1` samples.
    pub fn smoothed_free(&self) -> Option<u64> {
        recent_median(&self.shared.lock().history, |s| s.free)
    }

    /// What the planner may count on now: the median of the last [`SMOOTHING_WINDOW`] samples'
    /// `free + held`, but never more than the latest sample's. A lasting rise shows after
    /// `SMOOTHING_WINDOW / 2 + 1` samples, while a drop (another program taking memory) shrinks the
    /// next batch at once, before it can run out. Returns `(free, held)` of that figure, `held` as
    /// the latest sample has it.
    pub fn planning_available(&self) -> Option<(u64, u64)> {
        let state = self.shared.lock();
        let latest = state.history.back()?;
        let available = recent_median(&state.history, MemorySample::available)?.min(latest.available());
        Some((available.saturating_sub(latest.held), latest.held.min(available)))
    }

    /// Every sample of the last [`HISTORY_SPAN`], oldest first.
    pub fn history(&self) -> Vec<MemorySample> {
        self.shared.lock().history.iter().cloned().collect()
    }

    /// The error of the last sampling attempt, `None` after a success.
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().last_error.clone()
    }

    /// Takes a sample now, synchronously, unless the latest one is younger than `max_age`; returns
    /// the latest sample afterwards (`None` if there is none because the probe fails — see
    /// [`last_error`](Self::last_error)). The worker calls this before each batch decision.
    pub fn refresh_if_older(&self, max_age: Duration) -> Option<MemorySample> {
        let mut state = self.shared.lock();
        match state.history.back() {
            Some(s) if s.taken.elapsed() <= max_age => Some(s.clone()),
            _ => state.take_sample(),
        }
    }

    /// Takes a sample now regardless of age.
    pub fn sample_now(&self) -> Option<MemorySample> {
        self.shared.lock().take_sample()
    }

    /// Stops the background thread (idempotent; also done on drop). Samples already taken stay readable.
    pub fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Whether the background thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|h| !h.is_finished())
    }
}

/// The median of `value` over the last [`SMOOTHING_WINDOW`] samples (of two middle values, their
/// mean); `None` without samples.
fn recent_median(history: &VecDeque<MemorySample>, value: impl Fn(&MemorySample) -> u64) -> Option<u64> {
    let mut recent: Vec<u64> = history.iter().rev().take(SMOOTHING_WINDOW).map(value).collect();
    if recent.is_empty() {
        return None;
    }
    recent.sort_unstable();
    let n = recent.len();
    Some(if n % 2 == 1 { recent[n / 2] } else { recent[n / 2 - 1] / 2 + recent[n / 2] / 2 })
}

impl Drop for MemoryMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_space_limit_caps_total_and_free() {
        let gib = 1u64 << 30;
        assert_eq!(apply_address_space_limit(16 * gib, 10 * gib, None, 3 * gib), (16 * gib, 10 * gib));
        // ulimit -v 4 GiB with 3 GiB of address space already mapped: 1 GiB left.
        assert_eq!(apply_address_space_limit(16 * gib, 10 * gib, Some(4 * gib), 3 * gib), (4 * gib, gib));
        // A generous limit leaves MemAvailable in charge.
        assert_eq!(apply_address_space_limit(16 * gib, 10 * gib, Some(64 * gib), 3 * gib), (16 * gib, 10 * gib));
        // Already past the limit: nothing free, never an underflow.
        assert_eq!(apply_address_space_limit(16 * gib, 10 * gib, Some(2 * gib), 3 * gib), (2 * gib, 0));
    }

    #[test]
    fn kib_fields_are_read_in_bytes() {
        let text = "MemTotal:       16318412 kB\nMemFree:         1000 kB\nMemAvailable:   2000 kB\n";
        assert_eq!(kib_field(text, "MemTotal:"), Some(16318412 * 1024));
        assert_eq!(kib_field(text, "MemAvailable:"), Some(2000 * 1024));
        assert_eq!(kib_field(text, "SwapTotal:"), None);
    }

    #[test]
    fn used_by_others_saturates() {
        let s = MemorySample::new("x".into(), true, 100, 30, 20, None);
        assert_eq!(s.used_by_others, 50);
        let s = MemorySample::new("x".into(), true, 100, 90, 20, None);
        assert_eq!(s.used_by_others, 0);
    }

    #[test]
    fn a_failing_probe_leaves_an_error_and_no_sample() {
        let m = MemoryMonitor::manual(Box::new(FailingProbe(ProbeError::NoGpu("test".into()))));
        assert!(m.refresh_if_older(Duration::ZERO).is_none());
        assert_eq!(m.last_error().as_deref(), Some("no NVIDIA GPU (test)"));
        assert!(m.smoothed_free().is_none());
    }
}
