//! `info`: what gpen-studio sees, in one command for a bug report — the versions it runs with
//! (read from the loaded libraries, src/sys/runtime_versions.rs), each device with its memory, the
//! models installed and their recorded checksums, the MTCNN weights, stored calibrations, and the
//! data and config folders. `--json` prints the same as one JSON object.

use crate::engine::memory::{self, MemoryProbe, NvmlProbe, SystemRamProbe};
use crate::engine::memory_model::CalibrationStore;
use crate::engine::planner::format_bytes;
use crate::sys::runtime_versions::{self, Versions};
use crate::weights::{Catalogue, ModelStore};
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Info {
    pub gpen_studio: String,
    pub versions: Versions,
    pub devices: Vec<DeviceInfo>,
    /// GPUs the NVIDIA driver lists, whether or not libtorch can use them.
    pub nvidia_gpus: Vec<String>,
    pub models: Models,
    pub mtcnn: Mtcnn,
    pub calibrations: Calibrations,
    pub folders: Folders,
}

#[derive(Debug, Serialize)]
pub struct DeviceInfo {
    /// How `--device` names it: "cpu", "cuda:0".
    pub device: String,
    pub name: String,
    pub total_bytes: Option<u64>,
    /// Free GPU memory, or the RAM available.
    pub free_bytes: Option<u64>,
    /// Why there is no memory reading.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Models {
    pub folder: PathBuf,
    pub installed: Vec<InstalledModel>,
    /// A damaged checksums.json, say.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct InstalledModel {
    /// Catalogue name ("GPEN-BFR-512").
    pub name: String,
    pub path: PathBuf,
    /// What the catalogue expects: a GPEN configuration, or the add-on's network.
    pub configuration: String,
    /// The SHA-256 recorded when the file validated (`models verify` compares the file with it);
    /// `None`: installed by hand and never verified.
    pub sha256: Option<String>,
    pub verified: bool,
    pub bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Mtcnn {
    /// The folder `detect` and `restore` use.
    pub folder: PathBuf,
    pub found: bool,
    /// Where it is looked for, in order.
    pub searched: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Calibrations {
    pub file: PathBuf,
    pub faces: Vec<crate::engine::memory_model::CalibrationEntry>,
    pub upscalers: Vec<crate::engine::memory_model::SrCalibration>,
    /// Why the file was ignored, if it was.
    pub warning: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Folders {
    pub data: PathBuf,
    pub config: PathBuf,
}

pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let info = gather();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
    } else {
        write_text(&mut out, &info)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gather() -> Info {
    let versions = runtime_versions::versions();
    let mut devices = vec![cpu_device()];
    for i in 0..versions.cuda.devices {
        devices.push(cuda_device(i));
    }
    let nvidia_gpus = memory::nvml()
        .ok()
        .and_then(|nvml| {
            let n = nvml.device_count().ok()?;
            Some((0..n).map(|i| nvml.device_by_index(i).and_then(|d| d.name()).unwrap_or_else(|e| format!("GPU {i} ({e})"))).collect())
        })
        .unwrap_or_default();
    let calibration = CalibrationStore::load(&CalibrationStore::default_path());
    let mtcnn_folder = crate::detect::mtcnn::default_models_dir();
    let (searched, _) = crate::detect::mtcnn::search_path();
    Info {
        gpen_studio: env!("CARGO_PKG_VERSION").into(),
        versions,
        devices,
        nvidia_gpus,
        models: models(),
        mtcnn: Mtcnn { found: crate::detect::mtcnn::has_weights(&mtcnn_folder), folder: mtcnn_folder, searched },
        calibrations: Calibrations {
            file: calibration.path().to_path_buf(),
            faces: calibration.entries().to_vec(),
            upscalers: calibration.sr_entries().to_vec(),
            warning: calibration.warning().map(str::to_string),
        },
        folders: Folders { data: crate::paths::data_dir(), config: crate::paths::config_dir() },
    }
}

fn cpu_device() -> DeviceInfo {
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
    });
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let name = format!("{}, {cores} cores, libtorch uses {} threads", model.unwrap_or_else(|| "CPU".into()), tch::get_num_threads());
    match SystemRamProbe::new().sample() {
        Ok(s) => DeviceInfo { device: "cpu".into(), name, total_bytes: Some(s.total), free_bytes: Some(s.free), error: None },
        Err(e) => DeviceInfo { device: "cpu".into(), name, total_bytes: None, free_bytes: None, error: Some(e.to_string()) },
    }
}

fn cuda_device(i: usize) -> DeviceInfo {
    let device = format!("cuda:{i}");
    match NvmlProbe::new(i) {
        Ok(mut probe) => {
            let name = probe.name().to_string();
            match probe.sample() {
                Ok(s) => DeviceInfo { device, name, total_bytes: Some(s.total), free_bytes: Some(s.free), error: None },
                Err(e) => DeviceInfo { device, name, total_bytes: None, free_bytes: None, error: Some(e.to_string()) },
            }
        }
        Err(e) => DeviceInfo { name: device.clone(), device, total_bytes: None, free_bytes: None, error: Some(e.to_string()) },
    }
}

fn models() -> Models {
    let store = ModelStore::default();
    let catalogue = Catalogue::builtin();
    match store.status(&catalogue) {
        Ok(all) => Models {
            installed: all
                .into_iter()
                .filter(|s| s.installed)
                .map(|s| InstalledModel {
                    name: s.entry.name.clone(),
                    bytes: std::fs::metadata(&s.path).ok().map(|m| m.len()),
                    configuration: s.entry.kind.to_string(),
                    verified: s.record.is_some(),
                    sha256: s.record.map(|r| r.sha256),
                    path: s.path,
                })
                .collect(),
            folder: store.dir,
            error: None,
        },
        Err(e) => Models { folder: store.dir, installed: Vec::new(), error: Some(e.to_string()) },
    }
}

fn or_none(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

fn write_text(out: &mut impl Write, info: &Info) -> std::io::Result<()> {
    let v = &info.versions;
    writeln!(out, "gpen-studio {}", info.gpen_studio)?;
    let lib = &v.libtorch;
    let package = lib.package_version.as_ref().map(|p| format!("package {p}, ")).unwrap_or_default();
    let from = lib.library.as_ref().map(|p| format!(": {}", p.display())).unwrap_or_default();
    writeln!(out, "libtorch {} ({package}built against {}){from}", lib.version, lib.built_against)?;
    writeln!(
        out,
        "CUDA: libtorch built with {}, runtime loaded {}; {} CUDA device(s) usable",
        or_none(&v.cuda.libtorch_built_with),
        or_none(&v.cuda.runtime_loaded),
        v.cuda.devices
    )?;
    writeln!(out, "cuDNN: built with {}, loaded {}", or_none(&v.cudnn.built_with), or_none(&v.cudnn.loaded))?;
    match (&v.nvidia_driver.version, &v.nvidia_driver.error) {
        (Some(d), _) => writeln!(out, "NVIDIA driver: {d} (supports CUDA {})", or_none(&v.nvidia_driver.cuda))?,
        (None, Some(e)) => writeln!(out, "NVIDIA driver: not found; {e}")?,
        (None, None) => writeln!(out, "NVIDIA driver: unknown")?,
    }
    writeln!(out, "\ndevices:")?;
    for d in &info.devices {
        let memory = match (d.total_bytes, d.free_bytes, &d.error) {
            (Some(t), Some(f), _) => format!("{} total, {} free", format_bytes(t), format_bytes(f)),
            (_, _, Some(e)) => format!("no memory reading: {e}"),
            _ => "no memory reading".into(),
        };
        writeln!(out, "  {:<7} {}: {memory}", d.device, d.name)?;
    }
    if v.cuda.devices == 0 && !info.nvidia_gpus.is_empty() {
        writeln!(out, "  the driver lists {} but libtorch cannot use them (see README, GPU requirements)", info.nvidia_gpus.join(", "))?;
    }
    writeln!(out, "\nmodels in {}:", info.models.folder.display())?;
    if let Some(e) = &info.models.error {
        writeln!(out, "  cannot read: {e}")?;
    } else if info.models.installed.is_empty() {
        writeln!(out, "  none installed (`gpen-studio models download GPEN-BFR-512`)")?;
    }
    for m in &info.models.installed {
        let check = match &m.sha256 {
            Some(h) => format!("verified, SHA-256 {}…", &h[..h.len().min(16)]),
            None => "not verified (`gpen-studio models verify`)".into(),
        };
        writeln!(out, "  {:<24} {:<40} {check}", m.name, m.configuration)?;
    }
    let found = if info.mtcnn.found { "ready" } else { "missing" };
    writeln!(out, "\nface detector (MTCNN) weights: {} {found}", info.mtcnn.folder.display())?;
    if !info.mtcnn.found {
        let searched: Vec<String> = info.mtcnn.searched.iter().map(|p| p.display().to_string()).collect();
        writeln!(out, "  looked in: {}", searched.join(", "))?;
    }
    let c = &info.calibrations;
    writeln!(out, "\ncalibrations in {}:", c.file.display())?;
    if let Some(w) = &c.warning {
        writeln!(out, "  ignored: {w}")?;
    }
    if c.faces.is_empty() && c.upscalers.is_empty() {
        writeln!(out, "  none (`gpen-studio calibrate` measures them; until then the planner estimates)")?;
    }
    for e in &c.faces {
        writeln!(
            out,
            "  {} {} {}: {} fixed + {} per face ({})",
            e.device,
            e.config,
            e.precision,
            format_bytes(e.fixed),
            format_bytes(e.per_face),
            e.when
        )?;
    }
    for e in &c.upscalers {
        writeln!(out, "  {} SR {}: {} B per input pixel ({})", e.device, e.config, e.per_input_pixel, e.when)?;
    }
    writeln!(out, "\ndata folder: {}\nconfig folder: {}", info.folders.data.display(), info.folders.config.display())
}
