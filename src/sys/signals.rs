//! Signal dispositions and masks the commands need (the window keeps Rust's defaults).

/// SIGPIPE's default action (end the process, status 141) when `yes`, else ignored (Rust's default).
pub fn die_on_sigpipe(yes: bool) {
    // SAFETY: changing a signal's disposition; called before any other thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, if yes { libc::SIG_DFL } else { libc::SIG_IGN });
    }
}

/// Ignores SIGXFSZ, so that a write past the file-size limit fails with EFBIG instead of killing
/// the process.
pub fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN before any other thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Runs `f` with SIGPIPE blocked in this thread; a SIGPIPE left pending by `f` is discarded before
/// the signal is unblocked again.
pub fn with_sigpipe_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset operations on local sets, and this thread's own signal mask.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let result = f();
        let none = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        while libc::sigtimedwait(&pipe, std::ptr::null_mut(), &none) == libc::SIGPIPE {}
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        result
    }
}
