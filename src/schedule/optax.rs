//! optax schedules (`warmup_cosine_decay_schedule`, `sgdr_schedule`). In optax they return the lr itself;
//! wgtrain scales them by the base lr (`--lr 1` reads their native values), as a `LambdaLR` factor.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

fn d_one() -> f64 {
    1.0
}

/// `warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps W, decay_steps D, end_value=0,
/// exponent=1)` at update count k (the first update is k = 0):
/// k < W: `(init − peak)(1 − k/W) + peak`; otherwise with `c = min(k − W, D − W)` and
/// `α = end/peak` (0 if peak = 0): `peak·((1−α)·(½(1 + cos(πc/(D−W))))^exponent + α)`.
/// D includes the warmup; for k ≥ D the value holds at end_value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupCosineDecayCfg {
    pub init_value: f64,
    pub peak_value: f64,
    pub warmup_steps: i64,
    pub decay_steps: i64,
    #[serde(default)]
    pub end_value: f64,
    #[serde(default = "d_one")]
    pub exponent: f64,
}

impl WarmupCosineDecayCfg {
    /// optax raises ValueError for D ≤ W (its cosine part needs positive decay steps).
    pub fn validate(&self, field: &str) -> Result<()> {
        if self.warmup_steps < 0 {
            return Err(Error::Schedule(format!(
                "{field}.warmup_steps must be a non-negative integer (got {})",
                self.warmup_steps
            )));
        }
        if self.decay_steps <= self.warmup_steps {
            return Err(Error::Schedule(format!(
                "{field}.decay_steps must be greater than warmup_steps ({}), as it includes the warmup (got {})",
                self.warmup_steps, self.decay_steps
            )));
        }
        if self.exponent < 0.0 || self.exponent.is_nan() {
            return Err(Error::Schedule(format!("{field}.exponent must be ≥ 0 (got {})", self.exponent)));
        }
        Ok(())
    }

    /// The value at update count k, in optax's (x64) operation order.
    #[inline]
    pub fn value(&self, k: i64) -> f64 {
        let (init, peak, w) = (self.init_value, self.peak_value, self.warmup_steps);
        if k < w {
            let c = k.max(0).min(w);
            return (init - peak) * (1.0 - c as f64 / w as f64) + peak;
        }
        let alpha = if peak == 0.0 { 0.0 } else { self.end_value / peak };
        let span = (self.decay_steps - w) as f64;
        let c = ((k - w) as f64).min(span);
        let cos_part = 0.5 * (1.0 + (std::f64::consts::PI * c / span).cos());
        peak * ((1.0 - alpha) * cos_part.powf(self.exponent) + alpha)
    }
}

/// `sgdr_schedule(cosine_kwargs)`: one warmup-cosine-decay cycle after another. Cycle i covers
/// `decay_steps_i` updates and sees the local count `k − start_i`; the last cycle then holds its end value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdrCfg {
    pub cycles: Vec<WarmupCosineDecayCfg>,
}

impl SgdrCfg {
    pub fn validate(&self) -> Result<()> {
        if self.cycles.is_empty() {
            return Err(Error::Schedule("sgdr.cycles must hold at least one cycle (got an empty list)".into()));
        }
        for (i, c) in self.cycles.iter().enumerate() {
            c.validate(&format!("sgdr.cycles[{i}]"))?;
        }
        Ok(())
    }

    /// The value at update count k (`join_schedules` switches at k == boundary).
    #[inline]
    pub fn value(&self, k: i64) -> f64 {
        let mut start = 0i64;
        let last = self.cycles.len().saturating_sub(1);
        for (i, c) in self.cycles.iter().enumerate() {
            let end = start.saturating_add(c.decay_steps);
            if k < end || i == last {
                return c.value(k - start);
            }
            start = end;
        }
        0.0 // unreachable after validate(): cycles is non-empty
    }
}
