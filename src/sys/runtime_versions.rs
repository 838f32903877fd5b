//! The versions gpen-studio runs with, read at run time from what is loaded — not the versions it
//! was built against: a build against another libtorch (a user's `LIBTORCH`, the GPU machine's
//! torch 2.11) or a package whose libraries were swapped must say what it really runs.
//!
//! - libtorch: `TORCH_VERSION` in the build settings of the loaded library's own `at::show_config()`,
//!   and the file it was loaded from (`dladdr`), with the wheel's `version.py` (or a libtorch
//!   archive's `build-version`) found beside it;
//! - CUDA and cuDNN: the versions libtorch's CUDA part reports it was built with, and the ones the
//!   CUDA runtime and cuDNN libraries loaded in this process report (`cudaRuntimeGetVersion`,
//!   `cudnnGetVersion`, the call behind PyTorch's `torch.backends.cudnn.version()`);
//! - the NVIDIA driver: from NVML, or why there is none.

use serde::Serialize;
use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

unsafe extern "C" {
    fn gpen_torch_show_config() -> *mut c_char;
    fn gpen_torch_library_path() -> *mut c_char;
    fn gpen_torch_cuda_versions(cudart: *mut i64, cudnn_built: *mut i64);
}

/// The libtorch this build was linked against (build.rs), to show beside the loaded one.
pub const BUILT_AGAINST: &str = env!("GPEN_LIBTORCH_VERSION");

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Libtorch {
    /// As the loaded library reports it (`TORCH_VERSION` of `at::show_config()`), e.g. "2.13.0".
    pub version: String,
    /// The loaded `libtorch_cpu.so`.
    pub library: Option<PathBuf>,
    /// The package's own version file next to it (`torch/version.py`: "2.13.0+cu130").
    pub package_version: Option<String>,
    /// The libtorch the binary was built against.
    pub built_against: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cuda {
    /// The CUDA runtime libtorch was built with ("13.0"); `None`: a libtorch without CUDA.
    pub libtorch_built_with: Option<String>,
    /// The CUDA runtime library loaded in this process (`cudaRuntimeGetVersion`).
    pub runtime_loaded: Option<String>,
    /// CUDA devices libtorch can use (0 without a GPU or a driver).
    pub devices: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cudnn {
    /// The cuDNN libtorch was compiled against ("9.20.0").
    pub built_with: Option<String>,
    /// The cuDNN library loaded (`cudnnGetVersion`).
    pub loaded: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Driver {
    /// The NVIDIA driver's version from NVML ("580.95.05"); `None` when NVML cannot be loaded.
    pub version: Option<String>,
    /// The newest CUDA the driver supports ("13.0").
    pub cuda: Option<String>,
    /// Why there is no reading (no NVIDIA driver installed, say).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Versions {
    pub libtorch: Libtorch,
    pub cuda: Cuda,
    pub cudnn: Cudnn,
    pub nvidia_driver: Driver,
}

/// Takes a string the shim `strdup`ed (or null).
fn owned(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the shim returns null or a NUL-terminated string from strdup, which we now own.
    let text = unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned();
    unsafe { libc::free(ptr.cast()) };
    Some(text)
}

/// `TORCH_VERSION` from the "Build settings" of `at::show_config()`'s text.
pub fn torch_version_in(config: &str) -> Option<String> {
    let start = config.find("TORCH_VERSION=")? + "TORCH_VERSION=".len();
    let value: String = config[start..].chars().take_while(|c| *c != ',' && !c.is_whitespace()).collect();
    (!value.is_empty()).then_some(value)
}

/// The version of the libtorch loaded in this process (cached: it cannot change while we run).
pub fn libtorch_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        // SAFETY: the shim only reads libtorch's configuration and returns an owned string.
        let config = owned(unsafe { gpen_torch_show_config() });
        config.as_deref().and_then(torch_version_in).unwrap_or_else(|| "unknown".into())
    })
}

/// The version file a PyTorch wheel (`torch/version.py`) or a libtorch archive (`build-version`)
/// keeps beside its `lib/` folder.
pub fn package_version(library: &Path) -> Option<String> {
    let root = library.parent()?.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let v = text.lines().find_map(|l| l.strip_prefix("__version__ = "))?;
        return Some(v.trim().trim_matches(|c| c == '\'' || c == '"').to_string());
    }
    std::fs::read_to_string(root.join("build-version")).ok().map(|v| v.trim().to_string())
}

pub fn libtorch() -> Libtorch {
    // SAFETY: dladdr on a function of the loaded library; the shim returns an owned string.
    let library = owned(unsafe { gpen_torch_library_path() }).map(PathBuf::from);
    let library = library.map(|p| p.canonicalize().unwrap_or(p));
    Libtorch {
        version: libtorch_version().to_string(),
        package_version: library.as_deref().and_then(package_version),
        library,
        built_against: BUILT_AGAINST.to_string(),
    }
}

/// `13000` → "13.0", `12080` → "12.8" (CUDA's `1000 × major + 10 × minor`).
pub fn cuda_version(v: i64) -> Option<String> {
    (v > 0).then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
}

/// `92000` → "9.20.0" (cuDNN 9: `10000 × major + 100 × minor + patch`), `8902` → "8.9.2" (cuDNN 8
/// and older: `1000 × major + 100 × minor + patch`).
pub fn cudnn_version(v: i64) -> Option<String> {
    if v <= 0 {
        return None;
    }
    let (major, rest) = if v >= 90000 { (v / 10000, v % 10000) } else { (v / 1000, v % 1000) };
    Some(format!("{major}.{}.{}", rest / 100, rest % 100))
}

/// The CUDA runtime loaded in this process, if any.
fn loaded_cuda_runtime() -> Option<String> {
    type GetVersion = unsafe extern "C" fn(*mut libc::c_int) -> libc::c_int;
    // SAFETY: cudaRuntimeGetVersion has this C signature, writes one int and needs no driver.
    let get: GetVersion = unsafe { super::symbols::loaded_function(c"cudaRuntimeGetVersion")? };
    let mut v: libc::c_int = 0;
    (unsafe { get(&mut v) } == 0).then(|| cuda_version(v as i64)).flatten()
}

/// The cuDNN loaded in this process, if any.
fn loaded_cudnn() -> Option<String> {
    type GetVersion = unsafe extern "C" fn() -> libc::size_t;
    // SAFETY: cudnnGetVersion has this C signature and needs no GPU.
    let get: GetVersion = unsafe { super::symbols::loaded_function(c"cudnnGetVersion")? };
    cudnn_version(unsafe { get() } as i64)
}

pub fn cuda_and_cudnn() -> (Cuda, Cudnn) {
    let (mut cudart, mut built) = (-1i64, -1i64);
    // SAFETY: the shim writes two integers and catches libtorch's exceptions.
    unsafe { gpen_torch_cuda_versions(&mut cudart, &mut built) };
    let devices = if tch::Cuda::is_available() { tch::Cuda::device_count().max(0) as usize } else { 0 };
    (
        Cuda { libtorch_built_with: cuda_version(cudart), runtime_loaded: loaded_cuda_runtime(), devices },
        Cudnn { built_with: cudnn_version(built), loaded: loaded_cudnn() },
    )
}

pub fn nvidia_driver() -> Driver {
    match super::nvml::nvml() {
        Ok(nvml) => Driver {
            version: nvml.sys_driver_version().ok(),
            cuda: nvml.sys_cuda_driver_version().ok().and_then(|v| cuda_version(v as i64)),
            error: None,
        },
        Err(e) => Driver { version: None, cuda: None, error: Some(e.to_string()) },
    }
}

pub fn versions() -> Versions {
    let (cuda, cudnn) = cuda_and_cudnn();
    Versions { libtorch: libtorch(), cuda, cudnn, nvidia_driver: nvidia_driver() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_read_as_their_libraries_write_them() {
        assert_eq!(cuda_version(13000).as_deref(), Some("13.0"));
        assert_eq!(cuda_version(12080).as_deref(), Some("12.8"));
        assert_eq!(cuda_version(-1), None);
        assert_eq!(cudnn_version(92000).as_deref(), Some("9.20.0"));
        assert_eq!(cudnn_version(91002).as_deref(), Some("9.10.2"));
        assert_eq!(cudnn_version(8902).as_deref(), Some("8.9.2"));
        assert_eq!(cudnn_version(0), None);
        let settings = "  - Build settings: BLAS_INFO=mkl, CUDA_VERSION=13.0, TORCH_VERSION=2.11.0, USE_CUDA=1, ";
        assert_eq!(torch_version_in(settings).as_deref(), Some("2.11.0"));
        assert_eq!(torch_version_in("no settings"), None);
    }

    #[test]
    fn the_loaded_libtorch_names_its_version_and_file() {
        let lib = libtorch();
        let file = lib.library.as_ref().expect("dladdr finds the loaded libtorch");
        assert!(file.file_name().unwrap().to_string_lossy().starts_with("libtorch_cpu"), "{}", file.display());
        // The wheel's own version file beside the loaded library agrees with what the library says.
        let package = lib.package_version.expect("version.py beside the loaded libtorch");
        assert_eq!(package.split('+').next(), Some(lib.version.as_str()), "{package} vs {}", lib.version);
    }
}
