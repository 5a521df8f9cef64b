//! Checkpoints (docs/cli.md, "Checkpoints"): `DIR/step-NNNNNNNN/` holding `weights.safetensors` (PyTorch
//! `state_dict` names), `optimizer.safetensors` (PyTorch's per-parameter state names, the step count in the
//! header's metadata and, for Adam, as `NAME.step`) and `state.json` (everything else the next step depends on).
//!
//! Atomic: the files go into `DIR/.tmp-step-NNNNNNNN-PID/`, each is fsynced, then the directory, which is then
//! renamed into place and `DIR` fsynced. A `step-*` directory therefore only ever exists complete, and a crash
//! leaves at most a `.tmp-*` directory, which the next run in `DIR` removes. `state.json` records each tensor
//! file's length and CRC-32, so a file damaged afterwards is refused, not half-loaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::resume::LoopState;
use super::step::Session;
use crate::backend::Backend;
use crate::nn::{ModelSpec, weights};
use crate::optim::{OptimConfig, OptimizerKind};
use crate::schedule::{Scheduler, SchedulerState};
use crate::{Error, Result};

/// The layout of `state.json` and the tensor files; a checkpoint of another format is refused.
pub const FORMAT: u32 = 1;
pub const WEIGHTS: &str = "weights.safetensors";
pub const OPTIMIZER: &str = "optimizer.safetensors";
pub const STATE: &str = "state.json";

/// Length and CRC-32 (IEEE, as Python's `zlib.crc32`) of a tensor file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub bytes: u64,
    pub crc32: u32,
}

impl FileSum {
    fn of(bytes: &[u8]) -> FileSum {
        FileSum { bytes: bytes.len() as u64, crc32: crc32fast::hash(bytes) }
    }
}

/// The optimizer's host-side state and configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerMeta {
    pub kind: OptimizerKind,
    /// Optimizer steps taken (Adam's `step`).
    pub steps: u64,
    /// Per group: whether SGD's momentum buffers hold a value (PyTorch: `momentum_buffer` is not None).
    pub momentum_started: Vec<bool>,
    pub config: OptimConfig,
    /// Parameter names per group, in group order.
    pub groups: Vec<Vec<String>>,
}

/// What every checkpoint of one run shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's options (`train`'s long option names with `_`), `@FILE` values replaced by the file's text.
    pub options: Value,
    /// The layer list and the parameters it makes, `(name, shape)` in order.
    pub model: ModelSpec,
    pub params: Vec<(String, Vec<usize>)>,
    pub steps_per_epoch: usize,
    /// The backend that wrote it (bit-identity is promised on the same backend and adapter).
    pub backend: String,
}

/// `state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub format: u32,
    pub wgtrain: String,
    /// Optimizer steps done; the next step's epoch and position in it.
    pub step: usize,
    pub epoch: usize,
    pub position: usize,
    #[serde(rename = "loop")]
    pub loop_state: LoopState,
    pub scheduler: SchedulerState,
    pub optimizer: OptimizerMeta,
    /// Early stopping does not exist yet: always null, kept so the format has its place.
    pub early_stopping: Option<Value>,
    pub run: RunInfo,
    pub files: BTreeMap<String, FileSum>,
}

/// Saves a run's checkpoints into one directory.
pub struct Checkpointer {
    dir: PathBuf,
    every: Option<usize>,
    keep: usize,
    info: RunInfo,
    /// Seconds each save took (the benchmark reads them).
    pub save_secs: Vec<f64>,
}

impl Checkpointer {
    /// Checkpoints into `dir` every `every` steps (and after every epoch), keeping the newest `keep`. Removes
    /// `.tmp-*` directories a crashed run left. A fresh run (`resuming` false) refuses a directory that already
    /// holds checkpoints, which it would mix with its own.
    pub fn new(dir: &Path, every: Option<usize>, keep: usize, info: RunInfo, resuming: bool) -> Result<Checkpointer> {
        if every == Some(0) {
            return Err(Error::Usage("--checkpoint-every must be at least 1".into()));
        }
        if keep == 0 {
            return Err(Error::Usage("--keep-checkpoints must be at least 1".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-step-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        if !resuming && let Some((step, _)) = list(dir)?.last() {
            return Err(Error::Usage(format!(
                "--checkpoint-dir {} already holds checkpoints (the newest at step {step}): continue that run with \
                 --resume {0}, or choose another directory",
                dir.display()
            )));
        }
        Ok(Checkpointer { dir: dir.to_path_buf(), every, keep, info, save_secs: Vec::new() })
    }

    /// Whether a checkpoint is due after `done` steps (besides the end of every epoch and of the run).
    pub fn due(&self, done: usize) -> bool {
        self.every.is_some_and(|n| done.is_multiple_of(n))
    }

    /// Read the parameters once before the first step, so a GPU backend sizes its readback buffer for the packed
    /// sets now: saving then allocates nothing on the device during training.
    pub fn prime<B: Backend>(&mut self, b: &mut B, session: &Session<B>) -> Result<()> {
        b.read_set(&session.model.params).map(|_| ())
    }

    /// Save the state after `state.step` steps, then remove the oldest beyond `keep`.
    pub fn save<B: Backend>(
        &mut self,
        b: &mut B,
        session: &Session<B>,
        scheduler: &Scheduler,
        state: &LoopState,
    ) -> Result<()> {
        let t0 = Instant::now();
        let params = b.read_set(&session.model.params)?;
        let sets = session.optimizer.read_state(b)?;
        let opt = &session.optimizer;
        let names: Vec<&str> = self.info.params.iter().map(|(n, _)| n.as_str()).collect();
        let shapes: Vec<&[usize]> = self.info.params.iter().map(|(_, s)| s.as_slice()).collect();

        let final_dir = self.dir.join(format!("step-{:08}", state.step));
        let tmp = self.dir.join(format!(".tmp-step-{:08}-{}", state.step, std::process::id()));
        let weights_bytes = {
            let t: Vec<_> = names.iter().zip(&shapes).zip(&params).map(|((n, s), w)| (*n, *s, w.as_slice())).collect();
            weights::to_bytes(&final_dir.join(WEIGHTS), &t, &[])?
        };
        let optimizer_bytes = {
            let keyed: Vec<(String, &[usize], &[f32])> = sets
                .iter()
                .flat_map(|(suffix, set)| {
                    names
                        .iter()
                        .zip(&shapes)
                        .zip(set)
                        .map(move |((n, s), v)| (format!("{n}.{suffix}"), *s, v.as_slice()))
                })
                .collect();
            // PyTorch's Adam keeps `step` per parameter as a float32 scalar tensor.
            let step = [opt.steps as f32];
            let adam = opt.config.kind != OptimizerKind::Sgd;
            let steps: Vec<(String, &[usize], &[f32])> = if adam {
                names.iter().map(|n| (format!("{n}.step"), &[][..], &step[..])).collect()
            } else {
                Vec::new()
            };
            let t: Vec<_> = keyed.iter().chain(&steps).map(|(n, s, v)| (n.as_str(), *s, *v)).collect();
            weights::to_bytes(&final_dir.join(OPTIMIZER), &t, &[("step", opt.steps.to_string())])?
        };
        let spe = self.info.steps_per_epoch;
        let file = StateFile {
            format: FORMAT,
            wgtrain: env!("CARGO_PKG_VERSION").into(),
            step: state.step,
            epoch: state.step / spe,
            position: state.step % spe,
            loop_state: state.clone(),
            scheduler: scheduler.state(),
            optimizer: OptimizerMeta {
                kind: opt.config.kind,
                steps: opt.steps,
                momentum_started: opt.momentum_started.clone(),
                config: opt.config.clone(),
                groups: opt.groups.names.clone(),
            },
            early_stopping: None,
            run: self.info.clone(),
            files: BTreeMap::from([
                (WEIGHTS.to_string(), FileSum::of(&weights_bytes)),
                (OPTIMIZER.to_string(), FileSum::of(&optimizer_bytes)),
            ]),
        };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::Usage(format!("checkpoint: cannot serialize state.json: {e}")))?;

        let written = (|| -> std::io::Result<()> {
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp)?;
            }
            std::fs::create_dir(&tmp)?;
            // One thread per file: concurrent fsyncs share the file system's journal commits, so the three
            // cost about as much as the largest alone.
            std::thread::scope(|scope| {
                let files = [(WEIGHTS, &weights_bytes), (OPTIMIZER, &optimizer_bytes), (STATE, &json)];
                let handles: Vec<_> = files
                    .map(|(name, bytes)| {
                        let path = tmp.join(name);
                        scope.spawn(move || write_synced(&path, bytes))
                    })
                    .into_iter()
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("writer panicked"))))
            })?;
            sync_dir(&tmp)?;
            if final_dir.exists() {
                // Only when a run resumed from an older checkpoint passes a step it had saved before.
                std::fs::remove_dir_all(&final_dir)?;
            }
            std::fs::rename(&tmp, &final_dir)?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::io(&final_dir, e));
        }
        let all = list(&self.dir)?;
        for (_, old) in all.iter().take(all.len().saturating_sub(self.keep)) {
            std::fs::remove_dir_all(old).map_err(|e| Error::io(old, e))?;
        }
        self.save_secs.push(t0.elapsed().as_secs_f64());
        log::info!("checkpoint {} in {:.1} ms", final_dir.display(), t0.elapsed().as_secs_f64() * 1e3);
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Make a directory's entries (a created file, a rename) durable. Only Unix can open a directory to sync it.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The complete checkpoints in `dir` (`step-NNNNNNNN` directories), oldest first.
pub fn list(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix("step-").and_then(|n| n.parse::<usize>().ok())
            && entry.path().is_dir()
        {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest complete checkpoint in `dir`.
pub fn latest(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!("--resume {}: no such directory", dir.display())));
    }
    list(dir)?.pop().map(|(_, p)| p).ok_or_else(|| {
        Error::Usage(format!("--resume {}: no complete checkpoint (step-NNNNNNNN/) in the directory", dir.display()))
    })
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Usage(format!("checkpoint {}: {msg}", path.display()))
}

/// Read and check `state.json` of the checkpoint `at`: its format version first, then its fields.
pub fn read_state(at: &Path) -> Result<StateFile> {
    let path = at.join(STATE);
    let text = std::fs::read_to_string(&path).map_err(|e| bad(at, format!("cannot read {STATE}: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(at, format!("{STATE} is corrupt or truncated: {e}")))?;
    match v.get("format").and_then(Value::as_u64) {
        Some(f) if f == u64::from(FORMAT) => {}
        Some(f) => {
            let by = v.get("wgtrain").and_then(Value::as_str).unwrap_or("an unknown version");
            return Err(bad(
                at,
                format!(
                    "format version {f} (written by wgtrain {by}) is incompatible: this wgtrain reads version {FORMAT}"
                ),
            ));
        }
        None => return Err(bad(at, format!("{STATE} has no format version"))),
    }
    let state: StateFile = serde_json::from_value(v).map_err(|e| bad(at, format!("{STATE} is malformed: {e}")))?;
    if state.loop_state.step != state.step {
        return Err(bad(
            at,
            format!("{STATE} is inconsistent: step {} but loop step {}", state.step, state.loop_state.step),
        ));
    }
    Ok(state)
}

/// A tensor file of the checkpoint, checked against the length and CRC-32 `state.json` recorded.
fn read_checked(at: &Path, state: &StateFile, name: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(at.join(name)).map_err(|e| bad(at, format!("cannot read {name}: {e}")))?;
    let Some(want) = state.files.get(name) else { return Err(bad(at, format!("{STATE} lists no {name}"))) };
    let got = FileSum::of(&bytes);
    if got.bytes != want.bytes {
        return Err(bad(
            at,
            format!("{name} is truncated or extended: {} bytes, {STATE} says {}", got.bytes, want.bytes),
        ));
    }
    if got.crc32 != want.crc32 {
        return Err(bad(at, format!("{name} is corrupt: CRC-32 {:08x}, {STATE} says {:08x}", got.crc32, want.crc32)));
    }
    Ok(bytes)
}

/// The tensors of a checkpoint: weights in parameter order, and the optimizer's state sets in the order of
/// [`state_names`], each in parameter order.
pub struct Tensors {
    pub weights: Vec<Vec<f32>>,
    pub optimizer: Vec<Vec<Vec<f32>>>,
}

/// PyTorch's state names of an optimizer, in the order [`crate::optim::Optimizer::state_sets`] gives them.
pub fn state_names(config: &OptimConfig) -> Vec<&'static str> {
    match config.kind {
        OptimizerKind::Sgd => vec!["momentum_buffer"],
        _ if config.amsgrad => vec!["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
        _ => vec!["exp_avg", "exp_avg_sq"],
    }
}

/// Load the checkpoint's tensor files (checksums first, then exactly the expected names and shapes).
pub fn load_tensors(at: &Path, state: &StateFile) -> Result<Tensors> {
    let params = &state.run.params;
    let expected: Vec<(&str, &[usize])> = params.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    let bytes = read_checked(at, state, WEIGHTS)?;
    let weights = weights::load_bytes(&at.join(WEIGHTS), &bytes, &expected)?;

    let names = state_names(&state.optimizer.config);
    let mut keys: Vec<(String, &[usize])> =
        names.iter().flat_map(|k| params.iter().map(move |(n, s)| (format!("{n}.{k}"), s.as_slice()))).collect();
    if state.optimizer.kind != OptimizerKind::Sgd {
        keys.extend(params.iter().map(|(n, _)| (format!("{n}.step"), &[][..])));
    }
    let expected: Vec<(&str, &[usize])> = keys.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let path = at.join(OPTIMIZER);
    let bytes = read_checked(at, state, OPTIMIZER)?;
    let mut flat = weights::load_bytes(&path, &bytes, &expected)?;
    let meta_step = weights::metadata(&path, &bytes)?.get("step").and_then(|s| s.parse::<u64>().ok());
    if meta_step != Some(state.optimizer.steps) {
        return Err(bad(at, format!("{OPTIMIZER} holds step {meta_step:?}, {STATE} says {}", state.optimizer.steps)));
    }
    flat.truncate(names.len() * params.len());
    let mut optimizer = Vec::with_capacity(names.len());
    for _ in &names {
        let rest = flat.split_off(params.len());
        optimizer.push(std::mem::replace(&mut flat, rest));
    }
    Ok(Tensors { weights, optimizer })
}

/// Refuse a checkpoint that does not fit the run its options build: another layer list or parameters, another
/// optimizer or parameter-group layout, another number of steps per epoch.
pub fn check_fits(
    at: &Path,
    state: &StateFile,
    run: &RunInfo,
    optim: &OptimConfig,
    groups: &[Vec<String>],
) -> Result<()> {
    let mut problems = Vec::new();
    if state.run.model != run.model || state.run.params != run.params {
        let names =
            |p: &[(String, Vec<usize>)]| p.iter().map(|(n, s)| format!("{n} {s:?}")).collect::<Vec<_>>().join(", ");
        problems.push(format!(
            "model: the checkpoint's parameters are {}, the run's are {}",
            names(&state.run.params),
            names(&run.params)
        ));
    }
    if state.optimizer.kind != optim.kind || state.optimizer.config.amsgrad != optim.amsgrad {
        let show = |k: OptimizerKind, ams: bool| format!("{}{}", k.name(), if ams { " (amsgrad)" } else { "" });
        problems.push(format!(
            "optimizer: the checkpoint's is {}, the run's is {}",
            show(state.optimizer.kind, state.optimizer.config.amsgrad),
            show(optim.kind, optim.amsgrad)
        ));
    } else if state.optimizer.config != *optim {
        problems.push("optimizer: the checkpoint's hyper-parameters differ from the run's".into());
    }
    if state.optimizer.groups != groups {
        problems.push(format!(
            "parameter groups: the checkpoint's are {:?}, the run's are {:?}",
            state.optimizer.groups, groups
        ));
    }
    if state.run.steps_per_epoch != run.steps_per_epoch {
        problems.push(format!(
            "steps per epoch: the checkpoint's run had {}, this run has {}",
            state.run.steps_per_epoch, run.steps_per_epoch
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(bad(at, format!("does not match the run: {}", problems.join("; ")))) }
}
