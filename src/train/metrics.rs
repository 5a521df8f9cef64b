//! `--metrics` JSON Lines (cli.md): a first `run` object describing the run, one `step` object per optimizer
//! step, `val`/`eval` objects per epoch, each with the wall-clock `time` it was recorded at.
//!
//! Lines are collected in memory and written in bulk at each [`MetricsLog::flush`] (once per loss readback, not
//! per step), appended to the file in one write of whole lines, so the bytes written over a run are the size
//! of the file (O(steps)), not the square of it as rewriting the whole file at every flush would be. The file
//! is created by [`MetricsLog::start`] (or the first flush) through [`crate::output::AppendFile`]: devices and
//! FIFOs are written in place, and an earlier file at the path is replaced only when the run starts writing.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::Result;
use crate::output::AppendFile;

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
    EarlyStop {
        step: usize,
        epoch: usize,
        best_epoch: Option<usize>,
        best_loss: Option<f64>,
        restored: bool,
    },
}

/// Sees every event as it is recorded, and each flush, which closes a batch of events (a loss readback, an
/// epoch's evaluations): the console's progress display.
pub trait Observer {
    fn event(&mut self, e: &Event);
    fn flushed(&mut self) {}
}

/// Collects events and persists them to the optional metrics file.
#[derive(Default)]
pub struct MetricsLog {
    path: Option<PathBuf>,
    file: Option<AppendFile>,
    /// Lines recorded since the last flush.
    text: String,
    pub events: Vec<Event>,
    observer: Option<Box<dyn Observer>>,
}

/// Seconds since the Unix epoch, to the millisecond (a float: `pandas.to_datetime(t, unit="s")` reads it).
pub fn unix_time() -> f64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    (t * 1e3).round() / 1e3
}

/// One line as written: the event's fields, then `time`.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    event: &'a Event,
    time: f64,
}

impl MetricsLog {
    pub fn new(path: Option<PathBuf>) -> Self {
        MetricsLog { path, ..Default::default() }
    }

    /// A resumed run's log: the file starts with the `kept` lines of the run it continues
    /// ([`super::resume::kept_metrics`]); the first flush rewrites it with them.
    pub fn continuing(path: Option<PathBuf>, kept: String) -> Self {
        MetricsLog { path, text: kept, ..Default::default() }
    }

    /// Call `observer` with every event pushed from now on.
    pub fn set_observer(&mut self, observer: Box<dyn Observer>) {
        self.observer = Some(observer);
    }

    /// Create the file with the `{"event":"run",…}` line: `event` first, then `info`'s fields (a struct or
    /// map), then `time`. Called before training so a file that cannot be written stops the run before any work.
    pub fn start(&mut self, info: &impl Serialize) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let fields = serde_json::to_string(info).unwrap_or_default();
        // `{"a":1,…}` → `"a":1,…`, spliced between `event` and `time` (a Value map would sort the keys).
        let inner = fields.strip_prefix('{').and_then(|f| f.strip_suffix('}')).unwrap_or("").trim();
        let sep = if inner.is_empty() { "" } else { "," };
        let text = format!("{{\"event\":\"run\",{inner}{sep}\"time\":{}}}\n", unix_time());
        self.file = Some(AppendFile::create(path, text.as_bytes())?);
        Ok(())
    }

    pub fn push(&mut self, e: Event) {
        if self.path.is_some() {
            // Serializing plain numbers and enums cannot fail; non-finite floats become null.
            self.text.push_str(&serde_json::to_string(&Line { event: &e, time: unix_time() }).unwrap_or_default());
            self.text.push('\n');
        }
        if let Some(o) = self.observer.as_mut() {
            o.event(&e);
        }
        self.events.push(e);
    }

    /// Append the lines recorded since the last flush.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(o) = self.observer.as_mut() {
            o.flushed();
        }
        let Some(path) = &self.path else { return Ok(()) };
        if self.text.is_empty() && self.file.is_some() {
            return Ok(());
        }
        match self.file.as_mut() {
            Some(f) => f.append(self.text.as_bytes())?,
            None => self.file = Some(AppendFile::create(path, self.text.as_bytes())?),
        }
        self.text.clear();
        Ok(())
    }
}
