//! Hugging Face `transformers` schedules. Both are `LambdaLR` factors there, so here they run as a
//! [`LambdaLr`](super::lambda::LambdaLr): `lr = b·f(t)` with each group's own base lr.

use serde::{Deserialize, Serialize};

use super::pymath::py_max;
use crate::{Error, Result};

fn d_half() -> f64 {
    0.5
}

/// `get_cosine_schedule_with_warmup(num_warmup_steps W, num_training_steps N, num_cycles=0.5)`:
/// t < W: `t/max(1,W)` (so step 0 trains with lr 0); otherwise `p = (t−W)/max(1, N−W)` and
/// `max(0, ½(1 + cos(π·num_cycles·2·p)))`. No clamp after N: 0 at N, then it rises again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineWithWarmupCfg {
    pub num_warmup_steps: i64,
    pub num_training_steps: i64,
    #[serde(default = "d_half")]
    pub num_cycles: f64,
}

impl CosineWithWarmupCfg {
    /// The factor at step t, in HF's operation order.
    #[inline]
    pub fn factor(&self, t: i64) -> f64 {
        let w = self.num_warmup_steps;
        if t < w {
            return t as f64 / w.max(1) as f64;
        }
        // Python's integers do not overflow: subtract exactly (i128), then round once to float, as `float()` does.
        let progress = (t as i128 - w as i128) as f64 / (self.num_training_steps as i128 - w as i128).max(1) as f64;
        py_max(0.0, 0.5 * (1.0 + (std::f64::consts::PI * self.num_cycles * 2.0 * progress).cos()))
    }
}

/// `get_inverse_sqrt_schedule(num_warmup_steps W, timescale=None)`; timescale defaults to W, or 10000 if
/// W = 0. t < W: `t/max(1,W)`; otherwise `1/√((t + timescale − W)/timescale)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InverseSqrtCfg {
    pub num_warmup_steps: i64,
    #[serde(default)]
    pub timescale: Option<i64>,
}

impl InverseSqrtCfg {
    /// HF's `timescale or num_warmup_steps or 10_000` (an explicit timescale wins, even 0).
    pub fn timescale(&self) -> i64 {
        self.timescale.unwrap_or(if self.num_warmup_steps != 0 { self.num_warmup_steps } else { 10_000 })
    }

    /// Python would divide by zero (timescale 0) or take √ of a negative number: rejected up front.
    pub fn validate(&self) -> Result<()> {
        if self.num_warmup_steps < 0 {
            return Err(Error::Schedule(format!(
                "inverse_sqrt.num_warmup_steps must be a non-negative integer (got {})",
                self.num_warmup_steps
            )));
        }
        if self.timescale() < 1 {
            return Err(Error::Schedule(format!(
                "inverse_sqrt.timescale must be a positive integer (got {})",
                self.timescale()
            )));
        }
        Ok(())
    }

    /// The factor at step t, in HF's operation order (integer shift, then one true division).
    #[inline]
    pub fn factor(&self, t: i64) -> Result<f64> {
        let w = self.num_warmup_steps;
        if t < w {
            return Ok(t as f64 / w.max(1) as f64);
        }
        let ts = self.timescale();
        // Exact integer shift (i128: Python's integers do not overflow), then one rounding to float.
        let shift = ts as i128 - w as i128;
        let x = super::pymath::div((t as i128 + shift) as f64, ts as f64, "inverse_sqrt.timescale")?;
        Ok(1.0 / x.sqrt())
    }
}
