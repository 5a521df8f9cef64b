//! Output paths are checked before any work starts (docs/cli.md): the run's result must never be lost
//! because the file it goes to could not have been written in the first place.

use std::path::Path;

use super::file::{Resolved, parent_dir, resolve, temp_path};
use crate::{Error, Result};

/// What a path will hold, for the checks that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Any file name (weights, metrics, JSON, CSV): the writer does not care about the extension.
    File,
    /// A chart: the extension picks the format, so it must be `.png` or `.svg`.
    Plot,
}

/// Check every `(option, path, kind)` whose path is given; the first problem is a usage error (exit 2) that
/// names the option and the path. Checked:
/// - the path does not end in a separator (`dir/`) and does not name a directory;
/// - its directory exists, is a directory, and a file can be created in it (a probe file is created and
///   removed: permissions, read-only file systems and full inode tables all show up here);
/// - plots end in `.png` or `.svg`;
/// - no two options name the same file, however spelt (`./x` and `x`, a symlink and its target: compared as
///   files, see [`FileId`]).
///
/// Devices, FIFOs and sockets are accepted as they are: they are written in place ([`super::file`]), and two
/// options may both name one (`/dev/null`).
pub fn check_outputs(outputs: &[(&str, Option<&Path>, OutputKind)]) -> Result<()> {
    check_files(outputs, &[])
}

/// [`check_outputs`], and also that no output is one of the files the run reads: `inputs` are `(option,
/// path)`, a directory standing for the files directly in it (`--data`). Writing the metrics over the `--init`
/// weights, the data or the `--config` file would destroy what the run was made from.
pub fn check_files(outputs: &[(&str, Option<&Path>, OutputKind)], inputs: &[(&str, Option<&Path>)]) -> Result<()> {
    let mut seen: Vec<(&str, &Path, Option<FileId>)> = Vec::new();
    for &(option, path, kind) in outputs {
        let Some(path) = path else { continue };
        let real = check_one(path, kind).map_err(|msg| Error::Usage(format!("{option} {}: {msg}", path.display())))?;
        let special = std::fs::metadata(&real).is_ok_and(|m| !m.is_file());
        let id = (!special).then(|| FileId::of(&real));
        if let Some((other, _, _)) = seen.iter().find(|(_, _, i)| id.is_some() && *i == id) {
            return Err(Error::Usage(format!("{other} and {option} both name {}", path.display())));
        }
        seen.push((option, path, id));
    }
    for &(input, path) in inputs {
        let Some(path) = path else { continue };
        let files: Vec<std::path::PathBuf> = match std::fs::read_dir(path) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
            Err(_) => vec![path.to_path_buf()],
        };
        for file in files {
            let id = Some(FileId::of(&file));
            if let Some((option, out, _)) = seen.iter().find(|(_, _, i)| *i == id) {
                return Err(Error::Usage(format!(
                    "{option} {} would overwrite {}, which {input} reads",
                    out.display(),
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

/// What a path reaches, so that two spellings of one file compare equal: the device and inode of an existing
/// file (Unix), else its canonical directory joined with its name.
#[derive(Debug, PartialEq, Eq)]
enum FileId {
    Inode(u64, u64),
    Path(std::path::PathBuf),
}

impl FileId {
    fn of(path: &Path) -> FileId {
        #[cfg(unix)]
        if let Ok(m) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            return FileId::Inode(m.dev(), m.ino());
        }
        if let Ok(p) = std::fs::canonicalize(path) {
            return FileId::Path(p);
        }
        let dir = std::fs::canonicalize(parent_dir(path)).unwrap_or_else(|_| parent_dir(path).to_path_buf());
        FileId::Path(path.file_name().map_or(dir.clone(), |n| dir.join(n)))
    }
}

/// The resolved path a write would reach, or what is wrong with `path`.
fn check_one(path: &Path, kind: OutputKind) -> std::result::Result<std::path::PathBuf, String> {
    let text = path.as_os_str().to_string_lossy();
    if text.is_empty() {
        return Err("an empty file name".into());
    }
    if text.ends_with(std::path::MAIN_SEPARATOR) || text.ends_with('/') {
        return Err("ends with a path separator: give a file name, not a directory".into());
    }
    if kind == OutputKind::Plot {
        crate::plot::format_of(path).map_err(|e| match e {
            Error::Usage(m) => m.split_once(": ").map_or(m.clone(), |(_, rest)| rest.to_string()),
            other => other.to_string(),
        })?;
    }
    match resolve(path).map_err(|e| format!("cannot be written: {e}"))? {
        Resolved::Directory(_) => Err("is a directory: give a file name".into()),
        Resolved::Special(p) => Ok(p),
        Resolved::Regular(p) | Resolved::New(p) => {
            let dir = parent_dir(&p);
            match std::fs::metadata(dir) {
                Err(_) => return Err(format!("directory {} does not exist", dir.display())),
                Ok(m) if !m.is_dir() => return Err(format!("{} is not a directory", dir.display())),
                Ok(_) => {}
            }
            // The real test of writability: create (and remove) the temporary file the write will use.
            let probe = temp_path(&p).map_err(|e| e.to_string())?;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)
                .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
            let _ = std::fs::remove_file(&probe);
            Ok(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<()>) -> String {
        match r {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn bad_paths_are_named_with_their_option() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let missing = d.join("nope/w.safetensors");
        let m = msg(check_outputs(&[("--save-weights", Some(&missing), OutputKind::File)]));
        assert!(m.starts_with("--save-weights") && m.contains("does not exist"), "{m}");
        let m = msg(check_outputs(&[("--metrics", Some(d), OutputKind::File)]));
        assert!(m.contains("is a directory"), "{m}");
        let slash = std::path::PathBuf::from(format!("{}/", d.join("x").display()));
        assert!(msg(check_outputs(&[("--json", Some(&slash), OutputKind::File)])).contains("separator"));
        let jpg = d.join("a.jpg");
        let m = msg(check_outputs(&[("--plot", Some(&jpg), OutputKind::Plot)]));
        assert!(m.contains(".png or .svg") && m.contains(".jpg"), "{m}");
        let same = d.join("same");
        let m = msg(check_outputs(&[
            ("--metrics", Some(&same), OutputKind::File),
            ("--save-weights", Some(&same), OutputKind::File),
        ]));
        assert!(m.contains("--metrics and --save-weights"), "{m}");
        // A regular file inside a directory that is really a file.
        std::fs::write(d.join("file"), b"x").unwrap();
        let m = msg(check_outputs(&[("--metrics", Some(&d.join("file/m.jsonl")), OutputKind::File)]));
        assert!(m.contains("--metrics"), "{m}");
    }

    #[test]
    fn good_paths_pass_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("w.safetensors");
        let p = dir.path().join("p.SVG");
        check_outputs(&[("--save-weights", Some(&w), OutputKind::File), ("--plot", Some(&p), OutputKind::Plot)])
            .unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
    }
}
