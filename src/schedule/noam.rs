//! The Noam schedule of "Attention Is All You Need" (Burn's `NoamLrScheduler`), run as a `LambdaLR`
//! factor on the base lr: `lr(t) = b·noam(t+1)`.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

fn d_warmup() -> i64 {
    4000
}
fn d_model() -> i64 {
    512
}

/// `noam(s) = factor·d^−½·min(s^−½, s·W^−1.5)` with s = t + 1 (Burn increments before returning, so the
/// first lr is at s = 1; s = t would be 0^−½). Peak at s = W: `factor/√(d·W)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoamCfg {
    pub factor: f64,
    #[serde(default = "d_warmup")]
    pub warmup_steps: i64,
    #[serde(default = "d_model")]
    pub model_size: i64,
}

impl NoamCfg {
    /// Burn returns Err for warmup_steps 0 or model_size 0 (and Python divides by zero on them).
    pub fn validate(&self) -> Result<()> {
        if self.warmup_steps < 1 {
            return Err(Error::Schedule(format!(
                "noam.warmup_steps must be a positive integer (got {})",
                self.warmup_steps
            )));
        }
        if self.model_size < 1 {
            return Err(Error::Schedule(format!(
                "noam.model_size must be a positive integer (got {})",
                self.model_size
            )));
        }
        Ok(())
    }

    /// The factor at step t (s = t + 1), in Python's operation order: `(factor·d^−0.5)·min(…)`.
    #[inline]
    pub fn factor(&self, t: i64) -> Result<f64> {
        let s = (t + 1) as f64;
        let a = super::pymath::pow(s, -0.5, "noam")?;
        let b = s * (self.warmup_steps as f64).powf(-1.5);
        // Python's min(a, b): a unless b < a.
        let m = if b < a { b } else { a };
        Ok(self.factor * (self.model_size as f64).powf(-0.5) * m)
    }
}
