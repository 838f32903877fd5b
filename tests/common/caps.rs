//! Running a check as a user whom file permissions bind, even when the tests run as root (CI does).

/// Runs `f` on a thread of its own without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. Linux keeps
/// capabilities per thread, so only that thread loses root's permission override; the rest of the
/// test process keeps it. For a user who is not root the two capabilities are not there to drop.
pub fn without_permission_override<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        drop_permission_override();
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// capget/capset on the calling thread (pid 0), version 3 (two 32-bit words of each set).
fn drop_permission_override() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_DAC_OVERRIDE: u32 = 1;
    const CAP_DAC_READ_SEARCH: u32 = 2;
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: both syscalls read or write only the two structs passed, sized for version 3.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()), 0, "capget");
        let bits = (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH);
        data[0].effective &= !bits;
        data[0].permitted &= !bits;
        let rc = libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr());
        assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
    }
}
