//! Early stopping (`--early-stop-patience N --early-stop-min-delta X --restore-best`), as Keras' and Lightning's
//! `EarlyStopping` define it: after each epoch the monitored loss (the validation loss with `--val-split`, else
//! the epoch's mean training loss) counts as an improvement only if it falls below the best so far by more than
//! `min_delta`; after `patience` epochs without one, training stops. With `restore_best` the weights of the best
//! epoch are kept (read back once per improving epoch) and become the run's result.

use serde::{Deserialize, Serialize};

/// The rule's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// Epochs without improvement before stopping; `None` never stops (with `restore_best`, only tracks).
    pub patience: Option<usize>,
    pub min_delta: f64,
    pub restore_best: bool,
}

/// The rule's state after some epochs (everything resuming a run needs, weights aside).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopState {
    pub best: Option<f64>,
    pub best_epoch: Option<usize>,
    pub epochs_without_improvement: usize,
}

/// What the rule says after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new best: keep these weights if restoring.
    Improved,
    NoImprovement,
    /// Patience exhausted: stop now.
    Stop,
}

impl EarlyStopState {
    /// Record epoch `epoch`'s monitored loss. A non-finite loss never improves.
    pub fn observe(&mut self, rule: &EarlyStop, epoch: usize, monitored: f64) -> Verdict {
        let improved = monitored.is_finite() && self.best.is_none_or(|b| monitored < b - rule.min_delta);
        if improved {
            self.best = Some(monitored);
            self.best_epoch = Some(epoch);
            self.epochs_without_improvement = 0;
            return Verdict::Improved;
        }
        self.epochs_without_improvement += 1;
        match rule.patience {
            Some(p) if self.epochs_without_improvement >= p => Verdict::Stop,
            _ => Verdict::NoImprovement,
        }
    }
}
