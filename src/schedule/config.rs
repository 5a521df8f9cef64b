//! The JSON schedule format of schedules.md §6: one object with a `kind` and PyTorch's parameter names in
//! snake_case; omitted parameters take PyTorch's defaults; unknown kinds or fields are errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::composite::{ChainedCfg, SequentialCfg};
use super::cosine::{CosineAnnealingCfg, WarmRestartsCfg};
use super::cyclic::CyclicCfg;
use super::hf::{CosineWithWarmupCfg, InverseSqrtCfg};
use super::lambda::MultiplicativeCfg;
use super::linear::{ConstantCfg, LinearCfg, PolynomialCfg};
use super::noam::NoamCfg;
use super::one_cycle::OneCycleCfg;
use super::optax::{SgdrCfg, WarmupCosineDecayCfg};
use super::plateau::PlateauCfg;
use super::step::{ExponentialCfg, MultiStepCfg, StepCfg};
use crate::{Error, Result};

/// A learning-rate schedule as configured in JSON, e.g. `{"kind":"step","step_size":30,"gamma":0.1}`.
/// Each variant's parameters (and their PyTorch defaults) are documented on its config struct.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleConfig {
    /// `ConstantLR`.
    Constant(ConstantCfg),
    /// `LinearLR`.
    Linear(LinearCfg),
    /// `StepLR`.
    Step(StepCfg),
    /// `MultiStepLR`.
    MultiStep(MultiStepCfg),
    /// `ExponentialLR`.
    Exponential(ExponentialCfg),
    /// `PolynomialLR`.
    Polynomial(PolynomialCfg),
    /// `MultiplicativeLR` with a constant factor.
    Multiplicative(MultiplicativeCfg),
    /// `CosineAnnealingLR`.
    CosineAnnealing(CosineAnnealingCfg),
    /// `CosineAnnealingWarmRestarts`.
    CosineAnnealingWarmRestarts(WarmRestartsCfg),
    /// `CyclicLR`.
    Cyclic(CyclicCfg),
    /// `OneCycleLR`.
    OneCycle(OneCycleCfg),
    /// `ReduceLROnPlateau`.
    ReduceLrOnPlateau(PlateauCfg),
    /// `SequentialLR`.
    Sequential(SequentialCfg),
    /// `ChainedScheduler`.
    Chained(ChainedCfg),
    /// HF `get_cosine_schedule_with_warmup`.
    CosineWithWarmup(CosineWithWarmupCfg),
    /// HF `get_inverse_sqrt_schedule`.
    InverseSqrt(InverseSqrtCfg),
    /// Noam (Transformer paper, Burn).
    Noam(NoamCfg),
    /// optax `warmup_cosine_decay_schedule`.
    WarmupCosineDecay(WarmupCosineDecayCfg),
    /// optax `sgdr_schedule`.
    Sgdr(SgdrCfg),
}

/// Every `kind`, for error messages.
pub const KINDS: &[&str] = &[
    "constant",
    "linear",
    "step",
    "multi_step",
    "exponential",
    "polynomial",
    "multiplicative",
    "cosine_annealing",
    "cosine_annealing_warm_restarts",
    "cyclic",
    "one_cycle",
    "reduce_lr_on_plateau",
    "sequential",
    "chained",
    "cosine_with_warmup",
    "inverse_sqrt",
    "noam",
    "warmup_cosine_decay",
    "sgdr",
];

impl ScheduleConfig {
    /// Parse JSON text, or `@FILE` (read the file). An unknown kind or field, a missing field or a value of
    /// the wrong type is an [`Error::Schedule`] naming it (with its place inside sequential/chained).
    /// Values are checked when the scheduler is built ([`super::Scheduler::new`]).
    pub fn parse(arg: &str) -> Result<ScheduleConfig> {
        Ok(ScheduleConfig::parse_with_text(arg)?.0)
    }

    /// [`ScheduleConfig::parse`], also returning the JSON text as the user wrote it, whitespace collapsed
    /// (for titles and logs: it reads like their config, without the defaults filled in).
    pub fn parse_with_text(arg: &str) -> Result<(ScheduleConfig, String)> {
        let text = match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
            None => arg.to_string(),
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| Error::Schedule(format!("not valid JSON: {e}")))?;
        Ok((ScheduleConfig::from_value(&value)?, text.split_whitespace().collect::<Vec<_>>().join(" ")))
    }

    /// [`ScheduleConfig::parse`] for an already parsed JSON value.
    pub fn from_value(value: &Value) -> Result<ScheduleConfig> {
        check_integers(value, "")?;
        ScheduleConfig::deserialize(value).map_err(|e| Error::Schedule(locate(value, "", &e.to_string())))
    }

    /// The `kind` string of this config.
    pub fn kind(&self) -> &'static str {
        use ScheduleConfig as C;
        match self {
            C::Constant(_) => "constant",
            C::Linear(_) => "linear",
            C::Step(_) => "step",
            C::MultiStep(_) => "multi_step",
            C::Exponential(_) => "exponential",
            C::Polynomial(_) => "polynomial",
            C::Multiplicative(_) => "multiplicative",
            C::CosineAnnealing(_) => "cosine_annealing",
            C::CosineAnnealingWarmRestarts(_) => "cosine_annealing_warm_restarts",
            C::Cyclic(_) => "cyclic",
            C::OneCycle(_) => "one_cycle",
            C::ReduceLrOnPlateau(_) => "reduce_lr_on_plateau",
            C::Sequential(_) => "sequential",
            C::Chained(_) => "chained",
            C::CosineWithWarmup(_) => "cosine_with_warmup",
            C::InverseSqrt(_) => "inverse_sqrt",
            C::Noam(_) => "noam",
            C::WarmupCosineDecay(_) => "warmup_cosine_decay",
            C::Sgdr(_) => "sgdr",
        }
    }

    /// A one-line summary (kind and its parameters), for plot titles and logs.
    pub fn summary(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.kind().to_string())
    }
}

/// Largest magnitude of an integer in a schedule: 2^53, where f64 still counts every integer. Python's
/// integers are unbounded; ours are i64, and step arithmetic such as `(t − 1 − T) % (2·T)` must not overflow
/// for any step count a run can have. No real schedule comes near this (2^53 steps is 285 years at 1 µs/step).
pub const MAX_INTEGER: u64 = 1 << 53;

fn check_integers(v: &Value, at: &str) -> Result<()> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            let big = n.as_i64().is_none_or(|i| i.unsigned_abs() > MAX_INTEGER);
            if big {
                let at = if at.is_empty() { "a value".to_string() } else { format!("`{at}`") };
                return Err(Error::Schedule(format!("{at}: {n} is out of range (integers must be within ±2^53)")));
            }
            Ok(())
        }
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, x)| check_integers(x, &format!("{at}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, x)| check_integers(x, &if at.is_empty() { k.clone() } else { format!("{at}.{k}") })),
        _ => Ok(()),
    }
}

/// Turn serde's message into one that says where: the nested scheduler (`sequential.schedulers[1]`) and,
/// for a value of the wrong type, the field (serde names unknown and missing fields itself, but not the
/// field whose value has the wrong type).
fn locate(v: &Value, at: &str, msg: &str) -> String {
    let Some(obj) = v.as_object() else {
        return format!("{at}a schedule must be a JSON object with a \"kind\" (got {v})");
    };
    let kind = match obj.get("kind") {
        None => return format!("{at}missing field `kind`; one of: {}", KINDS.join(", ")),
        Some(Value::String(k)) if KINDS.contains(&k.as_str()) => k.as_str(),
        Some(k) => return format!("{at}unknown kind {k}; one of: {}", KINDS.join(", ")),
    };
    if let Some(Value::Array(children)) = obj.get("schedulers") {
        for (i, c) in children.iter().enumerate() {
            if let Err(e) = ScheduleConfig::deserialize(c) {
                return locate(c, &format!("{at}{kind}.schedulers[{i}]: "), &e.to_string());
            }
        }
    }
    if !msg.starts_with("missing field") && !msg.starts_with("unknown field") {
        // Deserialize each field alone: only the culprit fails with something other than a missing field.
        for (key, val) in obj.iter().filter(|(k, _)| k.as_str() != "kind") {
            let one = serde_json::json!({ "kind": kind, key.as_str(): val });
            if let Err(e) = ScheduleConfig::deserialize(&one) {
                let e = e.to_string();
                if !e.starts_with("missing field") {
                    return format!("{at}{kind}.{key}: {e}");
                }
            }
        }
    }
    format!("{at}{kind}: {msg}")
}
