//! What `train` says while it trains, on stderr (stdout keeps the one summary line of results).
//!
//! - On a terminal: an indicatif bar with epoch, step, lr, loss and ETA, and one line per epoch printed above
//!   it and kept (train loss, validation and test loss and accuracy, images/s), as Keras and Lightning do.
//! - Otherwise (CI logs, `nohup`, SLURM, `2>&1 | tee`): the same per-epoch line, plus a progress line every
//!   `--log-every` seconds inside long epochs; plain text, never a bar's control characters.
//! - `-q`: nothing.
//!
//! The console is fed the metrics events ([`Event`]) as the loop records them (it is the metrics log's
//! [`Observer`]), so it needs no hooks in the loop: an epoch's line is printed once its last step and the evaluations the run makes after it (validation
//! with `--val-split`, test unless `--no-eval`) have arrived. Steps arrive in bulk at each loss readback, so
//! the bar and the progress lines move in those increments.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::stdio;
use crate::train::Event;
use crate::train::metrics::Observer;

/// The shape of the run, for epoch boundaries and ETAs.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub steps: usize,
    pub steps_per_epoch: usize,
    pub batch_size: usize,
    /// Whether a `val` event follows each epoch (`--val-split`).
    pub val: bool,
    /// Whether an `eval` event follows each epoch (not `--no-eval`).
    pub test: bool,
    /// Without a terminal, a progress line at least this far apart inside an epoch.
    pub log_every: Duration,
}

impl Plan {
    fn epochs(&self) -> usize {
        self.steps.div_ceil(self.steps_per_epoch.max(1))
    }

    /// Steps done when epoch `e` (0-based) ends: a run cut by `--steps` ends inside its last epoch.
    fn epoch_end(&self, e: usize) -> usize {
        (e + 1).saturating_mul(self.steps_per_epoch).min(self.steps)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Bar,
    Lines,
}

impl Mode {
    /// `-q` → quiet; stderr on a terminal (and not `TERM=dumb`) → bar; else lines.
    pub fn detect() -> Mode {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if stdio::quiet() {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && !dumb {
            Mode::Bar
        } else {
            Mode::Lines
        }
    }
}

struct State {
    plan: Plan,
    mode: Mode,
    bar: Option<ProgressBar>,
    start: Instant,
    epoch: usize,
    epoch_start: Instant,
    /// When the epoch's last step arrived (training time ends there; evaluation follows).
    epoch_trained: Option<Instant>,
    loss_sum: f64,
    loss_n: usize,
    done: usize,
    /// lr and loss of the latest step.
    last: (f64, f32),
    val: Option<(f64, f64)>,
    test: Option<(f64, f64)>,
    last_line: Instant,
}

/// A handle on the console; clones share it (one goes into the metrics log's observer).
#[derive(Clone)]
pub struct Console(Rc<RefCell<State>>);

impl Console {
    pub fn new(plan: Plan, mode: Mode) -> Console {
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(plan.steps as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "epoch {prefix} {bar:30.cyan/blue} {pos}/{len} steps  {msg}  [{elapsed_precise}, ETA {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(format!("1/{}", plan.epochs()));
            // Steps arrive in bulk; the tick keeps the clock moving in between.
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        let now = Instant::now();
        Console(Rc::new(RefCell::new(State {
            plan,
            mode,
            bar,
            start: now,
            epoch: 0,
            epoch_start: now,
            epoch_trained: None,
            loss_sum: 0.0,
            loss_n: 0,
            done: 0,
            last: (0.0, f32::NAN),
            val: None,
            test: None,
            last_line: now,
        })))
    }

    /// A metrics-log observer feeding this console.
    pub fn observer(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    /// Remove the bar (before the summary line is printed or an error reported).
    pub fn finish(&self) {
        if let Some(bar) = self.0.borrow_mut().bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Console {
    fn event(&mut self, e: &Event) {
        self.0.borrow_mut().event(e);
    }

    fn flushed(&mut self) {
        self.0.borrow_mut().flushed();
    }
}

impl State {
    fn event(&mut self, e: &Event) {
        if self.mode == Mode::Quiet {
            return;
        }
        match *e {
            Event::Step { step, epoch, lr, loss, .. } => self.step(step, epoch, lr, loss),
            Event::Val { val_loss, val_accuracy, .. } => self.val = Some((val_loss, val_accuracy)),
            Event::Eval { test_loss, test_accuracy, .. } => self.test = Some((test_loss, test_accuracy)),
            Event::EarlyStop { epoch, best_epoch, best_loss, restored, .. } => {
                self.epoch_line_when_complete();
                let best = match (best_epoch, best_loss) {
                    (Some(e), Some(l)) => format!("; best epoch {} (monitored loss {l:.4})", e + 1),
                    _ => String::new(),
                };
                let kept = if restored { ", its weights kept" } else { "" };
                self.say(&format!("early stop after epoch {}{best}{kept}", epoch + 1));
                return;
            }
        }
        self.epoch_line_when_complete();
    }

    fn step(&mut self, step: usize, epoch: usize, lr: f64, loss: f32) {
        self.epoch = epoch;
        self.done = step + 1;
        self.loss_sum += loss as f64;
        self.loss_n += 1;
        self.last = (lr, loss);
        if self.done >= self.plan.epoch_end(epoch) {
            self.epoch_trained = Some(Instant::now());
        }
    }

    /// A batch of events is complete: show where the run is (events inside a batch share one moment).
    fn flushed(&mut self) {
        if self.mode == Mode::Quiet || self.done == 0 {
            return;
        }
        let (lr, loss) = self.last;
        // Inside an epoch; at its end the epoch line (printed once its evaluations are in) says it all.
        let inside = self.done < self.plan.epoch_end(self.epoch);
        if let Some(bar) = &self.bar {
            if inside || self.epoch_trained.is_some() {
                bar.set_prefix(format!("{}/{}", self.epoch + 1, self.plan.epochs()));
            }
            bar.set_position(self.done as u64);
            bar.set_message(format!("lr {}  loss {loss:.4}", short(lr)));
        } else if inside && self.last_line.elapsed() >= self.plan.log_every {
            let line = format!(
                "epoch {}/{}  step {}/{}  lr {}  loss {loss:.4}  {:.0} images/s  ETA {}",
                self.epoch + 1,
                self.plan.epochs(),
                self.done,
                self.plan.steps,
                short(lr),
                self.images_per_s(Instant::now()),
                eta(self.start.elapsed(), self.done, self.plan.steps),
            );
            self.say(&line);
        }
    }

    /// Images per second of training in the current epoch up to `until`.
    fn images_per_s(&self, until: Instant) -> f64 {
        let secs = until.duration_since(self.epoch_start).as_secs_f64().max(1e-9);
        (self.loss_n * self.plan.batch_size) as f64 / secs
    }

    fn epoch_line_when_complete(&mut self) {
        let Some(trained) = self.epoch_trained else { return };
        if (self.plan.val && self.val.is_none()) || (self.plan.test && self.test.is_none()) {
            return;
        }
        let mut line = format!(
            "epoch {}/{}  train loss {:.4}",
            self.epoch + 1,
            self.plan.epochs(),
            self.loss_sum / self.loss_n.max(1) as f64
        );
        for (name, v) in [("val", self.val.take()), ("test", self.test.take())] {
            if let Some((loss, acc)) = v {
                line += &format!("  {name} loss {loss:.4}  {name} acc {:.2}%", acc * 100.0);
            }
        }
        line += &format!(
            "  {:.0} images/s  {:.1}s",
            self.images_per_s(trained),
            Instant::now().duration_since(self.epoch_start).as_secs_f64()
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                // The next epoch's steps arrive only at its first readback: say which epoch runs meanwhile.
                if self.done < self.plan.steps {
                    bar.set_prefix(format!("{}/{}", self.epoch + 2, self.plan.epochs()));
                }
            }
            None => self.say(&line),
        }
        self.epoch_start = Instant::now();
        self.epoch_trained = None;
        self.loss_sum = 0.0;
        self.loss_n = 0;
    }

    fn say(&mut self, line: &str) {
        // A failing stderr is remembered by `stdio` (exit status 1 at the end); training goes on silently.
        if !stdio::note(line) {
            self.mode = Mode::Quiet;
        }
        self.last_line = Instant::now();
    }
}

/// A learning rate in few characters: `0.05`, `0.0001`, `3.2e-6`.
fn short(lr: f64) -> String {
    if lr == 0.0 || (1e-4..1e4).contains(&lr.abs()) {
        format!("{}", (lr * 1e6).round() / 1e6)
    } else {
        format!("{lr:.2e}")
    }
}

/// Remaining time at the average pace so far, as `1h02m`, `3m12s` or `45s`.
fn eta(elapsed: Duration, done: usize, total: usize) -> String {
    if done == 0 {
        return "?".into();
    }
    let secs = (elapsed.as_secs_f64() / done as f64 * total.saturating_sub(done) as f64).round() as u64;
    match secs {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ends_and_formats() {
        let plan = Plan {
            steps: 7,
            steps_per_epoch: 3,
            batch_size: 2,
            val: false,
            test: true,
            log_every: Duration::from_secs(30),
        };
        assert_eq!((plan.epochs(), plan.epoch_end(0), plan.epoch_end(2)), (3, 3, 7));
        assert_eq!(short(0.05), "0.05");
        assert_eq!(short(3.2e-6), "3.20e-6");
        assert_eq!(eta(Duration::from_secs(10), 10, 400), "6m30s");
        assert_eq!(eta(Duration::from_secs(10), 1, 400), "1h06m");
    }
}
