//! Keep GL driver probing quiet on headless machines.
//!
//! Listing adapters on every backend (`devices`, `compare --backends all`, `--backend auto`) makes wgpu's GL
//! backend probe for a Wayland display: it calls libwayland-client's `wl_display_connect`, which prints
//! `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` straight to stderr when that variable is
//! unset (SSH sessions without a login manager, containers, CI, SLURM jobs). The message is harmless (the probe
//! fails, the headless EGL path is used, GL adapters are still found), but it reads like our error.
//!
//! Choice: when `XDG_RUNTIME_DIR` is unset and `RUST_LOG` is unset, point it at a fresh, private, empty
//! directory for this process. `wl_display_connect` then looks for a socket there, finds none, and fails
//! silently, and every adapter is still listed, as docs/cli.md requires of `devices` and `compare all`.
//! The alternative, skipping GL whenever a Vulkan adapter exists, would hide GL adapters from `devices`.
//! Nothing else in this process uses the variable. With `RUST_LOG` set the environment is left as it is, so the
//! driver's own messages can be seen when debugging.

use std::path::PathBuf;
use std::sync::Mutex;

/// The directory created for this process, removed by [`cleanup`].
static CREATED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Call first thing in `main`, before any thread is started.
pub fn quiet_driver_probing() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() || std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wgtrain-runtime-{}", std::process::id()));
    if create_private(&dir).is_err() {
        return;
    }
    // SAFETY: called at the start of `main`, before any other thread exists, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    *CREATED.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir);
}

/// Remove the directory made by [`quiet_driver_probing`] (it is empty: nothing writes there).
pub fn cleanup() {
    if let Some(dir) = CREATED.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(unix)]
fn create_private(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    // A directory left by an earlier process with the same id is reused only if it is empty and ours.
    if dir.is_dir() && std::fs::remove_dir(dir).is_err() {
        return Err(std::io::Error::other("exists and is not empty"));
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private(_dir: &std::path::Path) -> std::io::Result<()> {
    // Wayland is a Unix thing; nothing to quiet elsewhere.
    Err(std::io::Error::other("not needed"))
}
