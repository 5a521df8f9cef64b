//! stdout and stderr without panics (`println!`/`eprintln!` panic when the stream fails).
//!
//! - stdout carries results (the summary line, tables, CSV). A closed pipe (`wgtrain … | head`) becomes
//!   [`Error::Closed`]: the program stops what it is doing and exits quietly with status 0, as readers like
//!   `head` expect. Any other failure (a full disk, `/dev/full`) is an error naming `stdout`, exit status 1.
//! - stderr carries notes and progress. Losing them must not lose a run, so a failure is remembered, the
//!   stream goes silent, and the program exits with status 1 at the end ([`stderr_failure`]) unless the
//!   failure was a closed pipe (nobody is reading: not an error).
//! - `-q`/`--quiet` ([`set_quiet`]) silences notes and progress; results and errors are still written.

use std::io::{ErrorKind, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Result};

static QUIET: AtomicBool = AtomicBool::new(false);
/// Set once stderr has failed; later notes are dropped without trying again.
static STDERR_DEAD: AtomicBool = AtomicBool::new(false);
/// The first stderr failure other than a closed pipe, reported at exit.
static STDERR_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// `-q`/`--quiet`: no notes or progress on stderr.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Map a stdout write error: a closed pipe ends the program quietly, anything else is an error.
pub fn stdout_error(e: std::io::Error) -> Error {
    if e.kind() == ErrorKind::BrokenPipe { Error::Closed("stdout") } else { Error::io("stdout", e) }
}

/// Write `text` to stdout and flush it, so a failure shows up here and not at exit.
pub fn out(text: &str) -> Result<()> {
    let mut lock = std::io::stdout().lock();
    lock.write_all(text.as_bytes()).and_then(|_| lock.flush()).map_err(stdout_error)
}

/// Write `text` to stdout followed by a newline.
pub fn out_line(text: &str) -> Result<()> {
    out(&format!("{text}\n"))
}

/// A note or progress line on stderr (nothing with `--quiet`). Returns false once stderr has failed, so a
/// caller can stop producing lines nobody receives.
pub fn note(text: &str) -> bool {
    if quiet() {
        return true;
    }
    to_stderr(text)
}

/// An error message on stderr, written even with `--quiet`.
pub fn error_line(text: &str) -> bool {
    to_stderr(text)
}

fn to_stderr(text: &str) -> bool {
    if STDERR_DEAD.load(Ordering::Relaxed) {
        return false;
    }
    let mut lock = std::io::stderr().lock();
    match lock.write_all(format!("{text}\n").as_bytes()).and_then(|_| lock.flush()) {
        Ok(()) => true,
        Err(e) => {
            STDERR_DEAD.store(true, Ordering::Relaxed);
            if e.kind() != ErrorKind::BrokenPipe {
                let mut slot = STDERR_ERROR.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| format!("stderr: {e}"));
            }
            false
        }
    }
}

/// The first failure writing to stderr (other than a closed pipe), if any: the program should exit with
/// status 1 even though its work succeeded.
pub fn stderr_failure() -> Option<String> {
    STDERR_ERROR.lock().unwrap_or_else(|p| p.into_inner()).clone()
}
