//! The memory half of the adaptive engine: probes, the smoothing monitor, the memory model with
//! calibration and its store, and the batch-size recommendation.

use gpen_studio::device::Precision;
use gpen_studio::engine::memory::{self, MemoryMonitor, MemoryProbe, MemorySample, NvmlProbe, SystemRamProbe};
use gpen_studio::engine::memory_model::{self, CalibrationStore, MemoryModel, ModelSource};
use gpen_studio::engine::planner::{format_bytes, recommend};
use gpen_studio::restore::gpen::Gpen;
use gpen_studio::restore::network::GpenConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// A probe that plays back a script of free values (repeating the last one) and counts its calls.
struct ScriptedProbe {
    free: Vec<u64>,
    next: usize,
    calls: Arc<AtomicUsize>,
}

impl ScriptedProbe {
    fn new(free: &[u64]) -> (Self, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        (ScriptedProbe { free: free.to_vec(), next: 0, calls: Arc::clone(&calls) }, calls)
    }
}

impl MemoryProbe for ScriptedProbe {
    fn sample(&mut self) -> Result<MemorySample, gpen_studio::engine::memory::ProbeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let free = self.free[self.next.min(self.free.len() - 1)];
        self.next += 1;
        Ok(MemorySample::new("Fake GPU 12 GB".into(), false, 12 * GIB, free, GIB, Some(50)).holding(GIB))
    }
}

fn gib(x: f64) -> u64 {
    (x * GIB as f64) as u64
}

fn model(fixed: f64, per_face: f64) -> MemoryModel {
    MemoryModel { fixed: gib(fixed), per_face: gib(per_face), source: ModelSource::Analytic }
}

// Recommendation
mod engine_planner {
    use super::*;

    /// The batch the planner's rule gives, computed here on its own: `(free × ratio − fixed) ÷ per
    /// face`, rounded down, at least 1 and at most `max_batch`.
    fn by_the_rule(free: f64, ratio: f64, fixed: f64, per_face: f64, max_batch: usize) -> usize {
        (((free * ratio - fixed) / per_face).floor().max(0.0) as usize).clamp(1, max_batch.max(1))
    }

    #[test]
    fn recommendation_shows_its_arithmetic() {
        let r = recommend(gib(7.1), 0.8, &model(0.4, 0.61), 16);
        // 7.1 × 0.8 − 0.4 = 5.28 GiB; 5.28 ÷ 0.61 = 8.66.
        assert_eq!(r.batch, by_the_rule(7.1, 0.8, 0.4, 0.61, 16));
        assert_eq!(r.batch, 8);
        assert_eq!(r.free, gib(7.1));
        assert_eq!(r.budget, (gib(7.1) as f64 * 0.8) as u64);
        assert_eq!(r.reason, format!("7.1 GiB free × 0.80 − 0.4 GiB fixed = {:.1} GiB ÷ 0.61 GiB per face = {}", 7.1 * 0.8 - 0.4, r.batch));
    }

    #[test]
    fn recommendation_clamps_to_one_and_to_max_batch() {
        let r = recommend(gib(1.0), 0.8, &model(0.4, 0.61), 16);
        // 1.0 × 0.8 − 0.4 = 0.4 GiB: less than one face of 0.61 GiB.
        assert_eq!(by_the_rule(1.0, 0.8, 0.4, 0.61, 16), 1);
        assert_eq!(r.batch, 1);
        assert_eq!(
            r.reason,
            format!("1.0 GiB free × 0.80 − 0.4 GiB fixed = {:.1} GiB ÷ 0.61 GiB per face = 0 → 1 (minimum)", 1.0 * 0.8 - 0.4)
        );

        let r = recommend(gib(40.0), 0.5, &model(0.0, 0.5), 16);
        // 40 × 0.5 = 20 GiB = 40 faces of 0.5 GiB, more than the 16 allowed.
        assert_eq!(r.batch, by_the_rule(40.0, 0.5, 0.0, 0.5, 16));
        assert_eq!(r.batch, 16);
        assert_eq!(
            r.reason,
            format!("40.0 GiB free × 0.50 − 0.0 GiB fixed = 20.0 GiB ÷ 0.50 GiB per face = {} → 16 (max batch)", 40.0 * 0.5 / 0.5)
        );

        let r = recommend(gib(0.5), 0.8, &model(0.5, 0.61), 16);
        assert_eq!(r.batch, 1);
        // 512 MiB × 0.8 = 409.6 MiB, shown rounded: below the 512 MiB fixed part.
        assert_eq!(
            r.reason,
            format!(
                "512 MiB free × 0.80 = {:.0} MiB: budget below the model's fixed memory (512 MiB); running 1 face at a time",
                512.0 * 0.8
            )
        );

        // Exactly on the boundary: 10 × 0.8 − 2 = 6 GiB = 4 faces of 1.5 GiB.
        assert_eq!(recommend(gib(10.0), 0.8, &model(2.0, 1.5), 16).batch, 4);
        // Nothing free at all, a zero max batch, a ratio above 1 (taken as 1): still a sane answer.
        assert_eq!(recommend(0, 0.8, &model(0.4, 0.61), 0).batch, 1);
        assert_eq!(recommend(gib(10.0), 3.0, &model(0.0, 1.0), 64).batch, by_the_rule(10.0, 1.0, 0.0, 1.0, 64));
    }

    #[test]
    fn small_amounts_are_in_mib() {
        assert_eq!(format_bytes(612 * MIB), "612 MiB");
        assert_eq!(format_bytes(gib(7.1)), "7.1 GiB");
        let r = recommend(512 * MIB, 1.0, &MemoryModel { fixed: 12 * MIB, per_face: 50 * MIB, source: ModelSource::Analytic }, 64);
        // 512 − 12 = 500 MiB = 10 faces of 50 MiB.
        assert_eq!(r.batch, (512 - 12) / 50);
        assert_eq!(r.reason, "512 MiB free × 1.00 − 12 MiB fixed = 500 MiB ÷ 50 MiB per face = 10");
        // A big card and a small model: small amounts stay readable inside a GiB sentence.
        let r = recommend(12 * GIB, 0.5, &MemoryModel { fixed: 12 * MIB, per_face: 400 * MIB, source: ModelSource::Analytic }, 64);
        // 6 GiB − 12 MiB = 6132 MiB ÷ 400 MiB = 15.3; 400 MiB is 0.39 GiB.
        assert_eq!(r.batch, (6 * 1024 - 12) / 400);
        assert_eq!(r.reason, format!("12.0 GiB free × 0.50 − 12 MiB fixed = 6.0 GiB ÷ {:.2} GiB per face = {}", 400.0 / 1024.0, r.batch));
    }
}

// Monitor
mod engine_monitor {
    use super::*;

    #[test]
    fn the_monitor_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<MemoryMonitor>();
        let (probe, _) = ScriptedProbe::new(&[gib(6.0)]);
        let m = Arc::new(MemoryMonitor::manual(Box::new(probe)));
        let other = Arc::clone(&m);
        std::thread::spawn(move || other.sample_now()).join().unwrap();
        assert_eq!(m.latest().unwrap().free, gib(6.0));
    }

    #[test]
    fn the_planner_sees_a_drop_at_once_and_a_rise_once_it_lasts() {
        // free 6, 6, 6, then another program takes 4 GiB, then gives it back.
        let (probe, _) = ScriptedProbe::new(&[gib(6.0), gib(6.0), gib(6.0), gib(2.0), gib(6.0), gib(6.0), gib(6.0)]);
        let m = MemoryMonitor::manual(Box::new(probe));
        let mut seen = Vec::new();
        for _ in 0..7 {
            m.sample_now();
            let (free, held) = m.planning_available().unwrap();
            assert_eq!(held, GIB, "the scripted device's reservation is ours");
            seen.push(free + held);
        }
        // Available = free + the 1 GiB held; the drop shows in the same sample, the rise right away
        // too here, because the median of the last five is already back up.
        assert_eq!(seen, [gib(7.0), gib(7.0), gib(7.0), gib(3.0), gib(7.0), gib(7.0), gib(7.0)]);

        // A rise after a lasting low is believed only once most of the window agrees.
        let (probe, _) = ScriptedProbe::new(&[gib(2.0), gib(2.0), gib(2.0), gib(2.0), gib(2.0), gib(6.0), gib(6.0), gib(6.0)]);
        let m = MemoryMonitor::manual(Box::new(probe));
        let mut seen = Vec::new();
        for _ in 0..8 {
            m.sample_now();
            let (free, held) = m.planning_available().unwrap();
            seen.push(free + held);
        }
        assert_eq!(seen, [gib(3.0), gib(3.0), gib(3.0), gib(3.0), gib(3.0), gib(3.0), gib(3.0), gib(7.0)]);
    }

    #[test]
    fn one_outlier_barely_moves_the_smoothed_free() {
        for outlier in [gib(0.6), gib(60.0)] {
            let (probe, _) = ScriptedProbe::new(&[gib(6.0), gib(6.1), gib(5.9), gib(6.0), outlier, gib(6.0)]);
            let m = MemoryMonitor::manual(Box::new(probe));
            for _ in 0..4 {
                m.sample_now();
            }
            let before = m.smoothed_free().unwrap();
            m.sample_now();
            assert_eq!(m.latest().unwrap().free, outlier);
            let after = m.smoothed_free().unwrap();
            let moved = (after as f64 - before as f64).abs() / before as f64;
            assert!(moved < 0.2, "outlier {outlier} moved smoothed free from {before} to {after}");
        }
    }

    #[test]
    fn a_lasting_change_shows_in_the_smoothed_free() {
        let (probe, _) = ScriptedProbe::new(&[gib(6.0), gib(6.0), gib(6.0), gib(6.0), gib(6.0), gib(2.0)]);
        let m = MemoryMonitor::manual(Box::new(probe));
        for _ in 0..5 {
            m.sample_now();
        }
        assert_eq!(m.smoothed_free(), Some(gib(6.0)));
        for _ in 0..3 {
            m.sample_now();
        }
        assert_eq!(m.smoothed_free(), Some(gib(2.0)));
        assert_eq!(m.history().len(), 8);
    }

    #[test]
    fn refresh_if_older_samples_only_when_stale() {
        let (probe, calls) = ScriptedProbe::new(&[gib(6.0), gib(5.0)]);
        let m = MemoryMonitor::manual(Box::new(probe));
        assert!(m.latest().is_none());
        assert_eq!(m.refresh_if_older(Duration::from_secs(60)).unwrap().free, gib(6.0), "no sample yet: takes one");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(m.refresh_if_older(Duration::from_secs(60)).unwrap().free, gib(6.0), "fresh: reuses it");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(m.refresh_if_older(Duration::from_millis(10)).unwrap().free, gib(5.0), "stale: samples now");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let s = m.latest().unwrap();
        assert_eq!(s.used_by_others, 12 * GIB - gib(5.0) - GIB);
        assert_eq!(s.utilization, Some(50));
    }

    #[test]
    fn monitor_thread_collects_samples_and_stops() {
        let (probe, calls) = ScriptedProbe::new(&[gib(6.0)]);
        let m = MemoryMonitor::start(Box::new(probe), Duration::from_millis(10));
        // A guard against hanging forever, not a speed check: 5 samples at 10 ms take 50 ms.
        let deadline = Instant::now() + Duration::from_secs(120);
        while m.history().len() < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(m.history().len() >= 5, "only {} samples", m.history().len());
        assert!(m.is_running());
        m.stop();
        assert!(!m.is_running());
        let n = calls.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(calls.load(Ordering::SeqCst), n, "no sampling after stop");
        assert_eq!(m.smoothed_free(), Some(gib(6.0)), "samples stay readable");
        m.stop(); // idempotent
    }

    #[test]
    fn a_long_interval_does_not_delay_stop_or_drop() {
        let (probe, calls) = ScriptedProbe::new(&[gib(6.0)]);
        let m = MemoryMonitor::start(Box::new(probe), Duration::from_secs(3600));
        while m.latest().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The thread sleeps an hour between samples: dropping must wake it, not wait for it. The
        // sampler thread's end is observed through the probe it owns, which it drops on its way out.
        let gone = Arc::downgrade(&calls);
        drop(calls);
        drop(m);
        assert!(gone.upgrade().is_none(), "the monitor thread still holds its probe after drop");
    }
}

// Probes
mod engine_probes {
    use super::*;

    fn meminfo_kib(name: &str) -> u64 {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap();
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    #[test]
    fn system_ram_probe_matches_proc_meminfo() {
        let mut probe = SystemRamProbe::new();
        let s = probe.sample().unwrap();
        assert!(s.cpu_mode);
        assert_eq!(s.device, "CPU (system RAM)");
        assert_eq!(s.utilization, None);
        let limit = gpen_studio::sys::process::address_space_limit();
        let total = meminfo_kib("MemTotal:");
        assert_eq!(s.total, limit.map_or(total, |l| total.min(l)));
        let available = meminfo_kib("MemAvailable:");
        // MemAvailable moves between two reads; allow 256 MiB.
        if limit.is_none() {
            assert!(s.free.abs_diff(available) < 256 * MIB, "free {} vs MemAvailable {available}", s.free);
        }
        assert!(s.free <= s.total);
        assert!(s.used_by_us > 0, "our resident set");
        assert_eq!(s.used_by_others, s.total.saturating_sub(s.free).saturating_sub(s.used_by_us));
        let probe = memory::probe_for(tch::Device::Cpu);
        let m = MemoryMonitor::manual(probe);
        assert!(m.sample_now().unwrap().cpu_mode);
    }

    /// Runs this test binary again with a 4 GiB address-space limit and checks that the probe there sees it.
    #[test]
    fn system_ram_probe_honours_an_address_space_limit() {
        if let Ok(expected) = std::env::var("GPEN_TEST_RLIMIT_CHILD") {
            let limit: u64 = expected.parse().unwrap();
            assert_eq!(gpen_studio::sys::process::address_space_limit(), Some(limit));
            let s = SystemRamProbe::new().sample().unwrap();
            assert_eq!(s.total, limit.min(meminfo_kib("MemTotal:")));
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let vm_kib: u64 =
                status.lines().find(|l| l.starts_with("VmSize:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
            assert!(s.free <= limit.saturating_sub(vm_kib * 1024) + 64 * MIB, "free {} ignores the limit", s.free);
            return;
        }
        // The child: same binary, only this test, RLIMIT_AS set between fork and exec. libtorch maps a
        // lot of address space at load; leave room for it above what the process has mapped now.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vm_kib: u64 = status.lines().find(|l| l.starts_with("VmSize:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        // Under a harder limit already (ulimit -v), the child inherits that one instead.
        let limit = match gpen_studio::sys::process::address_space_limit() {
            Some(l) if l < vm_kib * 1024 + 4 * GIB => l,
            _ => vm_kib * 1024 + 4 * GIB,
        };
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().unwrap();
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["--exact", "engine_probes::system_ram_probe_honours_an_address_space_limit", "--nocapture", "--test-threads=1"])
            .env("GPEN_TEST_RLIMIT_CHILD", limit.to_string());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::getrlimit(libc::RLIMIT_AS, &mut lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The hard limit stays as it is (only root may raise it).
                lim.rlim_cur = limit as libc::rlim_t;
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(text.contains("1 passed"), "child did not run the test:\n{text}");
    }

    #[test]
    fn nvml_probe_fails_cleanly_without_a_gpu() {
        match NvmlProbe::new(0) {
            Ok(mut p) => {
                // A machine with the driver: the probe must read something sensible.
                let s = p.sample().unwrap();
                assert!(!s.cpu_mode && s.total > 0 && s.free <= s.total, "{s:?}");
            }
            Err(e) => assert!(e.to_string().contains("no NVIDIA GPU"), "{e}"),
        }
        if NvmlProbe::new(0).is_err() {
            let m = MemoryMonitor::manual(memory::probe_for(tch::Device::Cuda(0)));
            assert!(m.sample_now().is_none());
            assert!(m.last_error().unwrap().contains("no NVIDIA GPU"));
        }
    }
}

// Calibration and the store
mod engine_calibration {
    use super::*;

    #[test]
    fn calibration_on_the_cpu_fits_a_line_and_round_trips_through_the_store() {
        let config = GpenConfig::new(64, 1, 0.125);
        let gpen = Gpen::random(config, tch::Device::Cpu, Precision::Fp32, 0).unwrap();
        let m = memory_model::calibrate(&gpen).unwrap();
        assert!(m.per_face > 0 && m.fixed > 0, "{m:?}");
        assert!(m.fixed >= memory_model::weight_bytes(&config));
        let ModelSource::Calibrated { device, when } = &m.source else { panic!("{m:?}") };
        assert_eq!(device, "CPU (system RAM)");
        assert_eq!(when.len(), "2026-11-25 20:31".len());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("calibrations.json");
        let mut store = CalibrationStore::load(&path);
        assert!(store.entries().is_empty() && store.warning().is_none());
        store.insert(device, &config, Precision::Fp32, &m);
        store.insert("NVIDIA GeForce RTX 3060", &GpenConfig::BFR_512, Precision::Fp16, &m);
        store.save().unwrap();

        let loaded = CalibrationStore::load(&path);
        assert!(loaded.warning().is_none());
        assert_eq!(loaded.entries().len(), 2);
        assert_eq!(loaded.get("CPU (system RAM)", &config, Precision::Fp32), Some(m.clone()));
        assert!(loaded.get("CPU (system RAM)", &config, Precision::Fp16).is_none());
        assert!(loaded.get("CPU (system RAM)", &GpenConfig::BFR_512, Precision::Fp32).is_none());
        assert!(loaded.get("NVIDIA GeForce RTX 3060", &GpenConfig::BFR_512, Precision::Fp16).is_some());

        // Re-inserting replaces.
        let mut store = loaded;
        let newer = MemoryModel { per_face: m.per_face + 1, ..m.clone() };
        store.insert("CPU (system RAM)", &config, Precision::Fp32, &newer);
        assert_eq!(store.entries().len(), 2);
        assert_eq!(store.get("CPU (system RAM)", &config, Precision::Fp32).unwrap().per_face, m.per_face + 1);
    }

    #[test]
    fn a_corrupt_store_is_ignored_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calibrations.json");
        std::fs::write(&path, "{\"version\": 1, \"calibrations\": [ {\"device\": ").unwrap();
        let mut store = CalibrationStore::load(&path);
        assert!(store.entries().is_empty());
        assert!(store.warning().unwrap().contains("corrupt"), "{:?}", store.warning());
        // It can be overwritten with a good one.
        store.insert("CPU (system RAM)", &GpenConfig::BFR_512, Precision::Fp32, &model(0.3, 0.6));
        store.save().unwrap();
        let store = CalibrationStore::load(&path);
        assert!(store.warning().is_none());
        assert_eq!(store.entries().len(), 1);
        // A missing file is simply empty, without a warning.
        let empty = CalibrationStore::load(&dir.path().join("absent.json"));
        assert!(empty.entries().is_empty() && empty.warning().is_none());
    }

    #[test]
    fn the_analytic_model_and_the_planner_agree_for_bfr512() {
        let m = memory_model::analytic(&GpenConfig::BFR_512, Precision::Fp32);
        // 12 GiB card, 80 %: (9.6 − 0.51) / 0.63 = 14.
        let r = recommend(12 * GIB, 0.8, &m, 64);
        assert_eq!(r.batch, 14, "{}", r.reason);
        assert_eq!(r.reason, "12.0 GiB free × 0.80 − 0.5 GiB fixed = 9.1 GiB ÷ 0.63 GiB per face = 14");
    }
}
