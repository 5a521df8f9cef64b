//! Everything wgtrain writes: output files and the standard streams.
//!
//! - [`check`]: every output path is validated before any work starts, so a finished run is never lost to a
//!   typo in `--save-weights` or a plot name with the wrong extension;
//! - [`file`]: writing a file safely: atomic replacement for regular files and new paths (symlinks resolved
//!   first, so the link survives), in-place writes for devices and FIFOs (never replaced by a regular file),
//!   and removal of temporary files left by a killed earlier run; [`file::AppendFile`] for the metrics log;
//! - [`stdio`]: stdout/stderr without panics: a closed pipe ends the program quietly, a full or failing
//!   stream is an error (exit status 1).

pub mod check;
pub mod file;
pub mod stdio;

pub use check::{OutputKind, check_files, check_outputs};
pub use file::{AppendFile, write_file};
