//! Optimizer parameter groups as PyTorch's schedulers see them, and the exact float encoding of saved state.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One optimizer parameter group: the keys of `optimizer.param_groups[i]` that schedulers read and write.
///
/// - `lr`: the learning rate the next optimizer step uses (`group["lr"]`).
/// - `initial_lr`: set by the first scheduler built on the optimizer to the then-current `lr`, **only if
///   missing**; every later scheduler takes it as its base lr (`base_lrs`). OneCycleLR overwrites it.
/// - `momentum`: SGD's momentum (`Some` for SGD even when 0, as SGD always has the key).
/// - `betas`: Adam's `(beta1, beta2)`; when present, momentum-cycling schedulers cycle `beta1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    #[serde(with = "exact")]
    pub lr: f64,
    #[serde(with = "exact_opt", default)]
    pub initial_lr: Option<f64>,
    #[serde(with = "exact_opt", default)]
    pub momentum: Option<f64>,
    #[serde(with = "exact_pair_opt", default)]
    pub betas: Option<(f64, f64)>,
}

impl Group {
    /// A `torch.optim.SGD` group: `lr` and `momentum` (SGD always has the momentum key, even at 0).
    pub fn sgd(lr: f64, momentum: f64) -> Group {
        Group { lr, initial_lr: None, momentum: Some(momentum), betas: None }
    }

    /// A `torch.optim.Adam`/`AdamW` group with `betas = (beta1, beta2)`.
    pub fn adam(lr: f64, betas: (f64, f64)) -> Group {
        Group { lr, initial_lr: None, momentum: None, betas: Some(betas) }
    }

    /// A group with neither momentum nor betas (momentum-cycling schedulers reject it).
    pub fn plain(lr: f64) -> Group {
        Group { lr, initial_lr: None, momentum: None, betas: None }
    }

    /// The momentum the optimizer uses: beta1 for Adam-style groups, else SGD's momentum, else 0.
    pub fn momentum_value(&self) -> f64 {
        match (self.betas, self.momentum) {
            (Some((b1, _)), _) => b1,
            (None, Some(m)) => m,
            (None, None) => 0.0,
        }
    }

    /// PyTorch's `group.setdefault("initial_lr", group["lr"])`, done by every scheduler constructor; returns
    /// the base lr the scheduler keeps.
    pub(crate) fn base_lr_setdefault(&mut self) -> f64 {
        *self.initial_lr.get_or_insert(self.lr)
    }

    /// Write a cycled momentum: beta1 when the group has betas (Adam), else SGD's momentum.
    #[inline]
    pub(crate) fn set_momentum(&mut self, m: f64) {
        match &mut self.betas {
            Some(b) => b.0 = m,
            None => self.momentum = Some(m),
        }
    }
}

/// PyTorch's check for `cycle_momentum=True`: the optimizer must have `momentum` or `betas`.
pub(crate) fn require_momentum(groups: &[Group], kind: &str) -> Result<()> {
    if groups.iter().any(|g| g.momentum.is_none() && g.betas.is_none()) {
        return Err(Error::Schedule(format!(
            "{kind}.cycle_momentum needs an optimizer with momentum or betas (set cycle_momentum to false)"
        )));
    }
    Ok(())
}

/// Captures every group's base lr (`initial_lr`, set to the current lr where missing).
pub(crate) fn base_lrs(groups: &mut [Group]) -> Vec<f64> {
    groups.iter_mut().map(Group::base_lr_setdefault).collect()
}

/// Serde for f64 as its shortest round-trip decimal string (`"0.1"`, `"inf"`, `"-0"`), so saved state
/// restores bit-identically through any format: JSON has no inf/NaN (plateau's `best` starts at ±inf),
/// and serde_json's default float parser is not always correctly rounded. Numbers are accepted on input.
pub mod exact {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Str(String),
            Num(f64),
        }
        match Repr::deserialize(d)? {
            Repr::Num(x) => Ok(x),
            Repr::Str(s) => s.parse::<f64>().map_err(|_| serde::de::Error::custom(format!("not a float: {s:?}"))),
        }
    }
}

/// [`exact`] for `Option<f64>` (`null` for `None`).
pub mod exact_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(with = "super::exact")] f64);

    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        x.map(W).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// [`exact`] for `Option<(f64, f64)>`.
pub mod exact_pair_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(with = "super::exact")] f64, #[serde(with = "super::exact")] f64);

    pub fn serialize<S: Serializer>(x: &Option<(f64, f64)>, s: S) -> Result<S::Ok, S::Error> {
        x.map(|(a, b)| W(a, b)).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(f64, f64)>, D::Error> {
        Ok(Option::<W>::deserialize(d)?.map(|w| (w.0, w.1)))
    }
}

/// A hyper-parameter given once for every group or once per group (PyTorch's `_format_param`: a list must
/// have exactly one entry per group). In JSON: a number or a list of numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerGroup {
    One(f64),
    Each(Vec<f64>),
}

impl PerGroup {
    /// One value per group; `field` names the parameter in the error.
    pub fn expand(&self, n: usize, field: &str) -> Result<Vec<f64>> {
        match self {
            PerGroup::One(x) => Ok(vec![*x; n]),
            PerGroup::Each(v) if v.len() == n => Ok(v.clone()),
            PerGroup::Each(v) => Err(Error::Schedule(format!(
                "{field} must be a number or a list with one number per param group ({n} group{}; got a list of {})",
                if n == 1 { "" } else { "s" },
                v.len()
            ))),
        }
    }

    /// The value for the first group (what a single-group run uses).
    pub fn first(&self) -> Option<f64> {
        match self {
            PerGroup::One(x) => Some(*x),
            PerGroup::Each(v) => v.first().copied(),
        }
    }
}

impl From<f64> for PerGroup {
    fn from(x: f64) -> Self {
        PerGroup::One(x)
    }
}
