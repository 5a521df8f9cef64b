//! Small shared helpers.

use std::path::Path;

use crate::Result;

/// Write `bytes` to `path` safely: atomically (temporary file, fsync, rename) for regular files and new
/// paths, through symlinks to their targets, in place for devices and FIFOs. See [`crate::output::file`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::output::write_file(path, bytes)
}
