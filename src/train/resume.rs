//! What an exact resume needs besides tensors: the loop's own state at a step boundary ([`LoopState`]), the
//! batch shuffler ([`Shuffler`]), the metrics lines a resumed run keeps, and the options of the saved run merged
//! with the ones given again.
//!
//! The shuffling RNG is restored by replay, not by loading its state: each epoch shuffles the previous epoch's
//! order in place, so the order of epoch e depends on every shuffle before it, and restoring the RNG alone would
//! not give the order back. Replaying the shuffles from the seed costs O(epochs · N) swaps (milliseconds for
//! MNIST) and keeps `state.json` small; the saved ChaCha8 word position then proves that the replay drew exactly
//! as many random words as the saved run did.

use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::optim::{DEFAULT_BETAS, DEFAULT_EPS, OptimizerKind};
use crate::{Error, Result};

/// The seed of the batch-shuffling RNG for a run seeded `seed` (distinct from the initialisation's stream).
/// Every command that draws batches (train, compare, lr-find, sweep) uses it, so they see the same batches.
pub fn shuffle_seed(seed: u64) -> u64 {
    seed ^ 0x5eed_0f0d_e5ed
}

/// The batch order of a shuffled run: one in-place shuffle of the previous order per epoch.
pub struct Shuffler {
    rng: ChaCha8Rng,
    pub order: Vec<u32>,
    /// Shuffles drawn so far (epochs started).
    pub shuffles: usize,
}

impl Shuffler {
    /// The identity order and the RNG of a run seeded `seed`, before any shuffle.
    pub fn new(seed: u64, len: usize) -> Shuffler {
        Shuffler { rng: ChaCha8Rng::seed_from_u64(shuffle_seed(seed)), order: (0..len as u32).collect(), shuffles: 0 }
    }

    /// Start an epoch: shuffle the current order.
    pub fn next_epoch(&mut self) {
        self.order.shuffle(&mut self.rng);
        self.shuffles += 1;
    }

    /// Draw the shuffles up to `shuffles` in all.
    pub fn replay(&mut self, shuffles: usize) {
        while self.shuffles < shuffles {
            self.next_epoch();
        }
    }

    /// The RNG's position in its stream, in 32-bit words.
    pub fn word_pos(&self) -> u128 {
        self.rng.get_word_pos()
    }
}

/// The loop's state between two steps, as a checkpoint saves it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopState {
    /// Optimizer steps done: the index of the next step.
    pub step: usize,
    /// Sum and count of this epoch's losses so far (a plateau schedule without --val-split steps on their mean).
    pub epoch_loss_sum: f64,
    pub epoch_loss_count: usize,
    /// The latest step's loss (none before the first step).
    pub last_loss: Option<f32>,
    /// Shuffles drawn (epochs started, when shuffling) and the RNG's word position after them (a decimal
    /// string: a u128 does not fit a JSON number).
    pub shuffles: usize,
    pub rng_word_pos: String,
}

impl LoopState {
    pub fn new(step: usize, epoch_loss: (f64, usize), last_loss: f32, shuffler: &Shuffler) -> LoopState {
        LoopState {
            step,
            epoch_loss_sum: epoch_loss.0,
            epoch_loss_count: epoch_loss.1,
            last_loss: last_loss.is_finite().then_some(last_loss),
            shuffles: shuffler.shuffles,
            rng_word_pos: shuffler.word_pos().to_string(),
        }
    }

    /// The replayed shuffler must be where the saved one was.
    pub fn check_rng(&self, shuffler: &Shuffler) -> Result<()> {
        let now = shuffler.word_pos().to_string();
        if self.shuffles != shuffler.shuffles || self.rng_word_pos != now {
            return Err(Error::Usage(format!(
                "checkpoint: the shuffling RNG does not match: saved after {} shuffles at word {}, replayed {} \
                 shuffles to word {now} (a different --seed, data size or wgtrain version)",
                self.shuffles, self.rng_word_pos, shuffler.shuffles
            )));
        }
        Ok(())
    }
}

/// The lines of the metrics file a run resumed at `step` keeps: step events before `step`, other events (eval,
/// val) before it or at it when `step` ends an epoch (those were written before that checkpoint was saved; at a
/// run's end inside an epoch the checkpoint comes first and the resumed run goes on through the epoch), and
/// lines without a step. Everything else was logged by a run killed after the checkpoint and is dropped. A
/// missing file keeps nothing.
pub fn kept_metrics(path: &Path, step: usize, steps_per_epoch: usize) -> Result<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::warn!("{}: no metrics file to continue; starting it at step {step}", path.display());
            return Ok(String::new());
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut kept = String::new();
    let mut steps = 0;
    for line in text.lines() {
        // A line that does not parse can only be a torn last line of a killed writer.
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        let keep = match (v.get("event").and_then(Value::as_str), v.get("step").and_then(Value::as_u64)) {
            (_, None) => true,
            (Some("step"), Some(s)) => (s as usize) < step,
            (_, Some(s)) => (s as usize) < step || (s as usize == step && step.is_multiple_of(steps_per_epoch)),
        };
        if keep {
            steps += usize::from(v.get("event").and_then(Value::as_str) == Some("step"));
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if steps != step {
        log::warn!("{}: holds {steps} of the {step} steps before the checkpoint", path.display());
    }
    Ok(kept)
}

/// Options a resumed run may give with other values than the saved run: the length, and what to write where
/// at the end or how often to checkpoint.
const FREE: [&str; 6] = ["resume", "steps", "epochs", "save_weights", "checkpoint_every", "keep_checkpoints"];
/// Options whose value may be `@FILE`; checkpoints hold the file's text, so a resumed run reads what the saved
/// run read (and a changed file is a contradiction, not a silent change).
const FILE_OPTIONS: [&str; 3] = ["model", "param_groups", "schedule"];

/// Replace `@FILE` values of [`FILE_OPTIONS`] in serialized options with the file's text.
pub fn inline_files(options: &mut Value) -> Result<()> {
    for key in FILE_OPTIONS {
        if let Some(Value::String(s)) = options.get_mut(key)
            && let Some(path) = s.strip_prefix('@')
        {
            let flag = key.replace('_', "-");
            *s = std::fs::read_to_string(path)
                .map_err(|e| Error::Usage(format!("--{flag}: cannot read {path}: {e}")))?;
        }
    }
    Ok(())
}

/// The options of a resumed run: the saved ones, with the [`FREE`] options given on the command line (`explicit`:
/// the option ids given there) taken from `given`. Any other option given with a value other than the saved one
/// is refused, naming it; `checkpoint_dir` becomes `dir` (the one resumed from).
pub fn merge_options(saved: &Value, given: &Value, explicit: &[String], dir: &Path) -> Result<Value> {
    let (Some(saved_map), Some(given_map)) = (saved.as_object(), given.as_object()) else {
        return Err(Error::Usage("checkpoint: state.json's options are not an object".into()));
    };
    let mut given_map = given_map.clone();
    let mut g = Value::Object(given_map.clone());
    inline_files(&mut g)?;
    if let Value::Object(m) = g {
        given_map = m;
    }
    let mut merged: Map<String, Value> = saved_map.clone();
    let mut contradictions = Vec::new();
    for id in explicit {
        let Some(value) = given_map.get(id) else { continue };
        if FREE.contains(&id.as_str()) {
            merged.insert(id.clone(), value.clone());
            continue;
        }
        if id == "checkpoint_dir" {
            let same = value.as_str().is_some_and(|d| same_dir(Path::new(d), dir));
            if !same {
                contradictions.push(format!("--checkpoint-dir {value} is not the --resume directory"));
            }
            continue;
        }
        let saved_value = saved_map.get(id).unwrap_or(&Value::Null);
        // Compared by effective value: `--lr 0.01` agrees with a run that took SGD's default 0.01.
        let default = if saved_value.is_null() { effective_default(id, saved_map) } else { None };
        let before = default.as_ref().unwrap_or(saved_value);
        if !same_value(value, before) {
            contradictions.push(format!(
                "--{} {} contradicts the checkpoint's {}",
                id.replace('_', "-"),
                show(value),
                show(before)
            ));
        }
    }
    if !contradictions.is_empty() {
        return Err(Error::Usage(format!(
            "--resume {}: {} (only --steps/--epochs, --save-weights, --checkpoint-every and --keep-checkpoints may change)",
            dir.display(),
            contradictions.join("; ")
        )));
    }
    // --epochs alone on the command line extends a run that was saved with --steps.
    if explicit.iter().any(|e| e == "epochs") && !explicit.iter().any(|e| e == "steps") {
        merged.insert("steps".into(), Value::Null);
    }
    merged.insert("checkpoint_dir".into(), Value::String(dir.to_string_lossy().into_owned()));
    Ok(Value::Object(merged))
}

/// The value an optimizer option left out (saved as null) took: the saved optimizer's default, as `prepare`
/// applies it; `None` for other options.
fn effective_default(id: &str, saved: &Map<String, Value>) -> Option<Value> {
    let kind = saved.get("optimizer").and_then(Value::as_str).and_then(|s| OptimizerKind::parse(s).ok())?;
    Some(match id {
        "lr" => Value::from(kind.default_lr()),
        "weight_decay" => Value::from(kind.default_weight_decay()),
        "momentum" | "dampening" => Value::from(0.0),
        "betas" => serde_json::json!([DEFAULT_BETAS.0, DEFAULT_BETAS.1]),
        "eps" => Value::from(DEFAULT_EPS),
        _ => return None,
    })
}

/// Equal values, where two strings holding JSON are equal when their JSON is (layer lists, groups, schedules
/// written with other spacing).
fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a.as_str().map(serde_json::from_str::<Value>), b.as_str().map(serde_json::from_str::<Value>)) {
        (Some(Ok(x)), Some(Ok(y))) => x == y,
        _ => false,
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// A value as a user wrote it: strings without quotes, null as "none".
fn show(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}
