//! Saved scheduler state: what changes while a scheduler runs. The configuration is not part of it: a run
//! is resumed by building the scheduler from the same config and loading this (see
//! [`Scheduler::restore`](super::Scheduler::restore)), which continues bit-identically.

use serde::{Deserialize, Serialize};

use super::group::{Group, exact};

/// The mutable state of one [`LrScheduler`](super::LrScheduler). Floats are stored as exact decimal strings
/// (see [`exact`]), so inf (plateau's initial best) and every last bit survive JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum SchedState {
    /// Every scheduler whose only state is PyTorch's `last_epoch`.
    Counter { t: i64 },
    /// CosineAnnealingWarmRestarts: `last_epoch`, `T_cur`, `T_i`.
    WarmRestarts {
        t: i64,
        #[serde(with = "exact")]
        t_cur: f64,
        t_i: i64,
    },
    /// ReduceLROnPlateau: `last_epoch`, `best`, `num_bad_epochs`, `cooldown_counter`.
    Plateau {
        t: i64,
        #[serde(with = "exact")]
        best: f64,
        num_bad: i64,
        cooldown_counter: i64,
    },
    /// SequentialLR: its global `last_epoch` and every child's state.
    Sequential { t: i64, children: Vec<SchedState> },
    /// ChainedScheduler: every child's state.
    Chained { children: Vec<SchedState> },
}

/// Everything needed to resume a [`Scheduler`](super::Scheduler): the param groups (lr, initial_lr,
/// momentum, betas as the optimizer holds them) and the scheduler's own state (`None` for a fixed lr).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerState {
    pub groups: Vec<Group>,
    pub scheduler: Option<SchedState>,
}
