//! `--metrics` JSON Lines (cli.md): one `step` object per optimizer step, `eval`/`val` objects per epoch.
//! The whole file is rewritten atomically whenever new lines arrive, so a reader (or a crash) never sees a
//! half-written line, and lines are flushed in bulk (once per loss readback), not per step.

use std::path::PathBuf;

use serde::Serialize;

use crate::Result;

#[derive(Serialize, Clone, Debug)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `lr` is group 0's; `lrs` every group's when there are several; `momentum` is SGD's momentum or Adam's
    /// beta1; `grad_norm` the global L2 norm of the gradients before clipping.
    Step {
        step: usize,
        epoch: usize,
        lr: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        lrs: Option<Vec<f64>>,
        momentum: f64,
        loss: f32,
        grad_norm: f32,
    },
    Eval {
        step: usize,
        epoch: usize,
        test_loss: f64,
        test_accuracy: f64,
    },
    Val {
        step: usize,
        epoch: usize,
        val_loss: f64,
        val_accuracy: f64,
    },
    /// Early stopping ended the run after `epoch`; `restored`: the saved weights are `best_epoch`'s.
    EarlyStop { step: usize, epoch: usize, best_epoch: Option<usize>, best_loss: Option<f64>, restored: bool },
}

/// Collects events and persists them to the optional metrics file.
#[derive(Default)]
pub struct MetricsLog {
    path: Option<PathBuf>,
    text: String,
    pub events: Vec<Event>,
}

impl MetricsLog {
    pub fn new(path: Option<PathBuf>) -> Self {
        MetricsLog { path, ..Default::default() }
    }

    /// A resumed run's log: the file starts with the `kept` lines of the run it continues
    /// ([`super::resume::kept_metrics`]).
    pub fn continuing(path: Option<PathBuf>, kept: String) -> Self {
        MetricsLog { path, text: kept, events: Vec::new() }
    }

    pub fn push(&mut self, e: Event) {
        if self.path.is_some() {
            // Serializing plain numbers and enums cannot fail; non-finite floats become null.
            self.text.push_str(&serde_json::to_string(&e).unwrap_or_default());
            self.text.push('\n');
        }
        self.events.push(e);
    }

    /// Write everything so far (atomically replacing the previous version).
    pub fn flush(&self) -> Result<()> {
        match &self.path {
            Some(p) => crate::util::write_atomic(p, self.text.as_bytes()),
            None => Ok(()),
        }
    }
}
