//! Writing output files without ever destroying what is at the target by mistake.
//!
//! What happens depends on what the path names, after following symlinks ([`resolve`]):
//! - a regular file or nothing yet: the bytes go to a temporary file `.NAME.tmpPID` in the same directory, are
//!   synced, and renamed over the target, so a reader (or a crash) sees the old file or the new one, never half
//!   of one. A symlink is resolved first and its target replaced, so the link itself stays;
//! - a device, FIFO or other special file (`/dev/null`, `/dev/stdout` on a pipe, a named pipe): written in
//!   place. Renaming a regular file over it would replace the device node itself (as root, `/dev/null`), so
//!   that must never happen; write errors (ENOSPC on `/dev/full`) are reported with the path.
//!
//! A process killed between creating its temporary file and renaming it leaves `.NAME.tmpPID` behind. The
//! next write to the same target removes such files when process PID no longer exists: the name pattern is
//! only ever created by this module, and a live PID's file is left alone (it may be another wgtrain writing).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Longest chain of symlinks followed (Linux's own limit is 40).
const MAX_LINKS: usize = 40;

/// What an output path names once symlinks are followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// An existing regular file at this (symlink-free final) path: replace atomically.
    Regular(PathBuf),
    /// Nothing exists here yet (possibly the target of a dangling symlink): create atomically.
    New(PathBuf),
    /// A device, FIFO or socket: write in place through the path as given.
    Special(PathBuf),
    /// A directory: nothing can be written there.
    Directory(PathBuf),
}

/// Follow `path` to what a write would reach.
pub fn resolve(path: &Path) -> std::io::Result<Resolved> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(Resolved::Directory(path.to_path_buf())),
        Ok(m) if m.is_file() => {
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|l| l.file_type().is_symlink());
            // Only a link needs its real path (rename replaces the link otherwise); canonicalize also sees
            // through /proc's magic links (`/dev/stdout` → `/proc/self/fd/1` → a regular file).
            Ok(Resolved::Regular(if is_link { std::fs::canonicalize(path)? } else { path.to_path_buf() }))
        }
        Ok(_) => Ok(Resolved::Special(path.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Resolved::New(follow_dangling(path)?)),
        Err(e) => Err(e),
    }
}

/// The path a dangling symlink chain ends at (or `path` itself when it is no link).
fn follow_dangling(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = if target.is_absolute() { target } else { parent_dir(&p).join(target) };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Usage(format!("{}: not a file path", path.display())))
}

/// `.NAME.tmpPID` beside `target`: hidden, and tied to this process so stale ones can be recognised.
pub fn temp_path(target: &Path) -> Result<PathBuf> {
    Ok(parent_dir(target).join(format!(".{}.tmp{}", file_name(target)?, std::process::id())))
}

/// Write `bytes` to `path` as the module documentation describes; every failure names `path`.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    match resolve(path).map_err(|e| Error::io(path, e))? {
        Resolved::Regular(p) | Resolved::New(p) => {
            let (mut f, tmp) = create_temp(&p)?;
            let done = f.write_all(bytes).and_then(|_| f.sync_all()).and_then(|_| std::fs::rename(&tmp, &p));
            finish_temp(done, &tmp, path)
        }
        Resolved::Special(p) => {
            let mut f = OpenOptions::new().write(true).open(&p).map_err(|e| Error::io(path, e))?;
            f.write_all(bytes).and_then(|_| f.flush()).map_err(|e| Error::io(path, e))
        }
        Resolved::Directory(_) => Err(is_directory(path)),
    }
}

pub(crate) fn is_directory(path: &Path) -> Error {
    Error::Usage(format!("{}: is a directory (expected a file name)", path.display()))
}

/// Remove stale temporaries of `target`, then create this process's temporary file for it.
fn create_temp(target: &Path) -> Result<(File, PathBuf)> {
    remove_stale_temps(target);
    let tmp = temp_path(target)?;
    let f = File::create(&tmp).map_err(|e| Error::io(target, e))?;
    Ok((f, tmp))
}

/// On failure remove the temporary file and report the error against the path the user named.
fn finish_temp(done: std::io::Result<()>, tmp: &Path, user_path: &Path) -> Result<()> {
    done.map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        Error::io(user_path, e)
    })
}

/// Delete `.NAME.tmpPID` (and `.NAME.tmpPID.png`, which earlier versions' PNG writer used) beside `target`
/// when PID is not a running process. Best effort: a failure here must not stop the write itself.
pub fn remove_stale_temps(target: &Path) {
    let Ok(name) = file_name(target) else { return };
    let prefix = format!(".{name}.tmp");
    let Ok(entries) = std::fs::read_dir(parent_dir(target)) else { return };
    for entry in entries.flatten() {
        let fname = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = fname.strip_prefix(&prefix) else { continue };
        let digits = rest.strip_suffix(".png").unwrap_or(rest);
        let Ok(pid) = digits.parse::<u32>() else { continue };
        if digits.starts_with('+') || pid == std::process::id() || process_alive(pid) {
            continue;
        }
        // Only plain files: a directory or link of that name is not ours.
        if entry.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(entry.path()).is_ok() {
            log::info!("removed {} left by an earlier run (process {pid} no longer exists)", entry.path().display());
        }
    }
}

/// Whether a process with this id exists. Where that cannot be known, assume it does (never delete).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// An output file written in pieces (the metrics log): created once with its first bytes, then appended to, so
/// the bytes written over a run are the size of the file, not the square of it.
///
/// A regular file (or new path) is created as a temporary file and renamed into place with its first bytes,
/// so an earlier file at the path survives until the run really starts writing; later pieces are appended in
/// one `write` each, whole lines at a time. Special files are opened in place.
pub struct AppendFile {
    path: PathBuf,
    file: File,
}

impl AppendFile {
    /// Create (or replace) `path` with `first` as its content.
    pub fn create(path: &Path, first: &[u8]) -> Result<AppendFile> {
        let file = match resolve(path).map_err(|e| Error::io(path, e))? {
            Resolved::Regular(p) | Resolved::New(p) => {
                let (mut f, tmp) = create_temp(&p)?;
                let done = f.write_all(first).and_then(|_| std::fs::rename(&tmp, &p));
                finish_temp(done, &tmp, path)?;
                f
            }
            Resolved::Special(p) => {
                let mut f = OpenOptions::new().write(true).open(&p).map_err(|e| Error::io(path, e))?;
                f.write_all(first).map_err(|e| Error::io(path, e))?;
                f
            }
            Resolved::Directory(_) => return Err(is_directory(path)),
        };
        Ok(AppendFile { path: path.to_path_buf(), file })
    }

    /// Append `bytes` (whole lines) at the end.
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| Error::io(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
