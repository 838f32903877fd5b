//! The one typed loader of functions from the libraries already in the process (libtorch links the
//! CUDA runtime, cuDNN, MKL and OpenMP), and the thread settings made through it.

use std::ffi::CStr;

/// A function of a library already loaded into the process, or `None` when none has it.
///
/// # Safety
/// `F` must be the function's real signature (an `unsafe extern "C" fn` type).
pub unsafe fn loaded_function<F: Copy>(name: &CStr) -> Option<F> {
    const { assert!(size_of::<F>() == size_of::<*mut libc::c_void>(), "F must be a function pointer") };
    // SAFETY: dlsym only looks the name up among the loaded libraries; the caller vouches for F.
    let ptr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!ptr.is_null()).then(|| unsafe { std::mem::transmute_copy::<*mut libc::c_void, F>(&ptr) })
}

/// Sets the intra-op threads of OpenMP (what ATen and oneDNN use) and MKL for the calling thread
/// only; a library that is not loaded is skipped.
pub fn set_this_thread_math_threads(threads: i32) {
    // SAFETY: both functions have these C signatures (libgomp's and MKL's documented ones) and only
    // change the calling thread's thread count.
    unsafe {
        if let Some(f) = loaded_function::<unsafe extern "C" fn(libc::c_int)>(c"omp_set_num_threads") {
            f(threads);
        }
        if let Some(f) = loaded_function::<unsafe extern "C" fn(libc::c_int) -> libc::c_int>(c"MKL_Set_Num_Threads_Local") {
            f(threads);
        }
    }
}
