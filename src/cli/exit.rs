//! Exit statuses, the same for every command (documented in `--help` and the README), and what a
//! closed output pipe does.

use std::process::ExitCode;

/// Everything asked was done.
pub const DONE: u8 = 0;
/// Some photos, faces or files failed (each is reported), or the command could not run at all.
pub const FAILED: u8 = 1;
/// Bad usage: an unknown option, a bad value, a missing argument (clap's own status for these), and
/// what the user must change before anything can run: a missing weights file or add-on, a device
/// that is not there.
pub const USAGE: u8 = 2;
/// Cancelled with Ctrl-C (128 + SIGINT, what a shell shows for a program killed by it): what was
/// finished is kept, and running the same command again resumes.
pub const CANCELLED: u8 = 130;
/// Ended by SIGPIPE (128 + 13): the reader of stdout or stderr went away (`| head`).
pub const CLOSED_PIPE: u8 = 141;

/// The `--help` footer.
pub const AFTER_HELP: &str = "\
Exit status (every command):
  0    all done
  1    some photos (or faces, files) failed and were reported, or the command could not run
  2    bad usage: unknown option, bad value, missing argument, missing weights file, no such device
  130  cancelled (Ctrl-C); finished results are kept and a rerun resumes
  141  the reader of the output went away (`| head`): ended quietly by SIGPIPE, like cat or grep

-v/--verbose prints every batch re-plan; -q/--quiet prints only errors and the summary.";

/// The footer of each command's `--help`.
pub const SHORT_HELP: &str = "Exit status: 0 done, 1 some failed, 2 bad usage, 130 cancelled, 141 output closed \
                              (gpen-studio --help explains)";

/// A usage mistake found after parsing (a command, file or value that makes no sense): status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `map_err` for values that fail validation after parsing (a batch of 0, `--task` without
/// `--aligned`): bad usage, status 2.
pub fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.to_string()))
}

/// The status of a run over many inputs: cancelled wins over failed (the run did not finish; the
/// summary already counts what failed), failed over done.
pub fn of_run(failed: bool, cancelled: bool) -> ExitCode {
    ExitCode::from(if cancelled {
        CANCELLED
    } else if failed {
        FAILED
    } else {
        DONE
    })
}

/// The status of a command's error: bad usage or a failure.
pub fn of_error(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(if err.downcast_ref::<UsageError>().is_some() { USAGE } else { FAILED })
}

/// Lets a write to a closed pipe end the process as SIGPIPE does in C programs (status 141 in a
/// shell, no message), instead of Rust's default of ignoring the signal, after which `println!`
/// panics with "failed printing to stdout: Broken pipe". It covers stdout and stderr, every thread
/// and libtorch's own writes alike. Only for the commands: the window keeps the signal ignored.
/// (ripgrep instead exits 0 on a broken pipe; 141 keeps `set -o pipefail` scripts honest, as with
/// every C tool.) Network writes are not affected: Rust's sockets send with MSG_NOSIGNAL.
pub fn die_on_closed_pipe(yes: bool) {
    crate::sys::signals::die_on_sigpipe(yes);
}

/// Runs `f` with SIGPIPE blocked in this thread, so that a write to a closed socket in `f` (TLS
/// writes go through `writev`, which cannot ask for MSG_NOSIGNAL) is an error that `f` reports,
/// not a silent death; a SIGPIPE left pending is discarded before the signal is unblocked again.
pub fn with_sigpipe_as_error<T>(f: impl FnOnce() -> T) -> T {
    crate::sys::signals::with_sigpipe_blocked(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_error_is_status_2_and_anything_else_1() {
        assert_eq!(of_error(&anyhow::Error::new(UsageError("no such thing".into()))), ExitCode::from(USAGE));
        assert_eq!(of_error(&anyhow::anyhow!("disk full")), ExitCode::from(FAILED));
        assert_eq!(of_run(false, false), ExitCode::from(DONE));
        assert_eq!(of_run(true, false), ExitCode::from(FAILED));
        assert_eq!(of_run(true, true), ExitCode::from(CANCELLED));
    }

    #[test]
    fn a_closed_pipe_inside_with_sigpipe_as_error_is_an_error() {
        die_on_closed_pipe(true);
        let (reader, mut writer) = std::io::pipe().unwrap();
        drop(reader);
        let err = with_sigpipe_as_error(|| std::io::Write::write_all(&mut writer, b"x")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        die_on_closed_pipe(false); // the test harness's own default
    }

    #[test]
    fn the_help_footer_names_every_status() {
        for code in [DONE, FAILED, USAGE, CANCELLED, CLOSED_PIPE] {
            assert!(AFTER_HELP.lines().any(|l| l.trim_start().starts_with(&format!("{code} "))), "{code} is not documented");
        }
    }
}
