//! Links libtorch so the binary runs without LD_LIBRARY_PATH and with CUDA active where a GPU exists.
//!
//! torch-sys only passes its rpath to its own C++ glue, and cargo does not forward `rustc-link-arg`
//! to dependents (tch-rs#907, #980), so every binary of ours needs these arguments itself.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/sys/memory_shim.cpp");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports where libtorch is");
    compile_memory_shim(std::path::Path::new(&lib));
    println!("cargo:rustc-env=GPEN_LIBTORCH_VERSION={}", libtorch_version(std::path::Path::new(&lib)));
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    // Development and test runs: the libtorch we were built against.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // Installed layout of the .deb: /usr/bin/gpen-studio finds /usr/lib/gpen-studio/torch/lib.
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib/gpen-studio/torch/lib");
    // libtorch.so pulls in libtorch_cuda.so; without --no-as-needed the linker drops it because no
    // symbol of ours references it, and tch::Cuda::is_available() is then false on a GPU machine.
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}

/// The version of the libtorch we link, for the benchmarks' headers: a PyTorch wheel's
/// `torch/version.py`, or a libtorch archive's `build-version` file.
fn libtorch_version(lib: &std::path::Path) -> String {
    let root = lib.parent().expect("libtorch lib dir has a parent");
    println!("cargo:rerun-if-changed={}", root.join("version.py").display());
    if let Ok(text) = std::fs::read_to_string(root.join("version.py"))
        && let Some(v) = text.lines().find_map(|l| l.strip_prefix("__version__ = "))
    {
        return v.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
    }
    std::fs::read_to_string(root.join("build-version")).map(|v| v.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// The allocator-statistics shim (src/sys/memory_shim.cpp) against libtorch's headers, with the flags
/// torch-sys uses for its own glue.
fn compile_memory_shim(lib: &std::path::Path) {
    let root = lib.parent().expect("libtorch lib dir has a parent");
    cc::Build::new()
        .cpp(true)
        .file("src/sys/memory_shim.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag_if_supported("-std=c++17")
        .flag_if_supported("-w")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .compile("gpen_memory_shim");
}
