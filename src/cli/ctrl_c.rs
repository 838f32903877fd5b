//! Ctrl-C for the commands that drive the engine (`restore`, `upscale`): the first one cancels the
//! run as the window's Cancel does — a GPEN batch in flight finishes, a photo being upscaled stops
//! between the network's blocks, nothing partial is written, finished results stay, and the
//! command exits 130 after its summary — and a second one exits at once.

use crate::engine::worker::Command;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};

/// Installs the handler; `saying` is what the first Ctrl-C prints (what the user waits for).
pub fn cancel_on_ctrl_c(commands: Sender<Command>, saying: &'static str) {
    let interrupted = AtomicBool::new(false);
    // A second handler cannot be installed; each command installs one, once.
    let _ = ctrlc::set_handler(move || {
        if interrupted.swap(true, Ordering::SeqCst) {
            std::process::exit(super::exit::CANCELLED.into());
        }
        eprintln!("\n{saying} (Ctrl-C again to quit at once)");
        let _ = commands.send(Command::Cancel);
    });
}
