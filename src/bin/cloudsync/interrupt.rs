//! Ctrl-C and SIGTERM: the first one cancels the running job cleanly (transfers stop;
//! unfinished uploads of a one-shot copy are aborted, a task's are kept for its next run to
//! resume; a task's job is recorded ABORTED), a second one ends the process at once. The
//! exit code is rclone's: 128 + the signal's number.

use cloudsync::engine::CancelToken;
use nix::sys::signal::{SigSet, Signal};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

static TOKEN: OnceLock<CancelToken> = OnceLock::new();
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Block SIGINT and SIGTERM in this thread (every thread started later inherits it) and
/// wait for them on a thread of their own. Call before starting any other thread.
pub fn install() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return; // signals then keep their default action
    }
    let token = TOKEN.get_or_init(CancelToken::new).clone();
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        loop {
            let Ok(sig) = set.wait() else { return };
            if RECEIVED.swap(sig as i32, Relaxed) != 0 {
                eprintln!("\ncloudsync: {} again: exiting now", sig.as_str());
                std::process::exit(128 + sig as i32);
            }
            eprintln!("\ncloudsync: {}: stopping cleanly (again to exit at once)", sig.as_str());
            token.cancel();
        }
    });
}

/// The token that the first signal cancels.
pub fn token() -> CancelToken {
    TOKEN.get_or_init(CancelToken::new).clone()
}

/// rclone's exit code for a run a signal stopped, if one did.
pub fn exit_code() -> Option<i32> {
    match RECEIVED.load(Relaxed) {
        0 => None,
        sig => Some(128 + sig),
    }
}
