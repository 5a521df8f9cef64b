//! What the command line says about the optimizer: its kind and defaults (`torch.optim.SGD`, `Adam`, `AdamW`),
//! parameter groups (`--param-groups`: globs over parameter names, first match wins, the rest form a last group
//! with the command-line values) and gradient clipping. Everything is validated here, before any tensor exists,
//! with PyTorch's own constructor checks.

use serde::{Deserialize, Serialize};

use crate::schedule::Group;
use crate::{Error, Result};

/// Parameter groups an update kernel addresses (the uniform holds this many group slots).
pub use super::hyper::MAX_GROUPS;

/// Which `torch.optim` class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
}

impl OptimizerKind {
    pub fn parse(s: &str) -> Result<OptimizerKind> {
        match s {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            "adamw" => Ok(OptimizerKind::AdamW),
            _ => Err(Error::Usage(format!("unknown optimizer `{s}`: use sgd, adam or adamw"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// PyTorch's default lr: 0.01 for this project's SGD (cli.md), 0.001 for Adam and AdamW.
    pub fn default_lr(self) -> f64 {
        if self == OptimizerKind::Sgd { 0.01 } else { 0.001 }
    }

    /// PyTorch's default weight decay: 0.01 for AdamW, 0 otherwise.
    pub fn default_weight_decay(self) -> f64 {
        if self == OptimizerKind::AdamW { 0.01 } else { 0.0 }
    }
}

/// PyTorch's defaults of the options every optimizer of a kind shares (SGD's momentum and dampening are 0).
pub const DEFAULT_BETAS: (f64, f64) = (0.9, 0.999);
pub const DEFAULT_EPS: f64 = 1e-8;

/// The hyper-parameters of one group, resolved (group override, else command line, else PyTorch default).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupHyper {
    pub lr: f64,
    pub weight_decay: f64,
    /// SGD.
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    /// Adam / AdamW.
    pub betas: (f64, f64),
    pub eps: f64,
}

/// One entry of `--param-groups`: the globs, and the keys it overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub params: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dampening: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nesterov: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub betas: Option<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
}

impl GroupSpec {
    /// `--param-groups` as given: JSON or `@FILE`.
    pub fn parse_arg(arg: &str) -> Result<Vec<GroupSpec>> {
        let text = match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| Error::Usage(format!("--param-groups: cannot read {path}: {e}")))?,
            None => arg.to_string(),
        };
        let specs: Vec<GroupSpec> = serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("--param-groups is not a valid list of groups: {e}")))?;
        if specs.is_empty() {
            return Err(Error::Usage("--param-groups is an empty list (leave the option out for one group)".into()));
        }
        for (i, s) in specs.iter().enumerate() {
            if s.params.is_empty() {
                return Err(Error::Usage(format!("--param-groups: group {i} has an empty \"params\" list")));
            }
        }
        Ok(specs)
    }
}

/// `*` matches any run of characters (including none); every other character matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && p[i] != '*' && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// The optimizer as configured: kind, command-line values, groups, clipping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    /// The command-line values (the last group's, and every group's defaults).
    pub base: GroupHyper,
    pub amsgrad: bool,
    pub groups: Vec<GroupSpec>,
    /// `--clip-grad-norm`, `--clip-grad-value`.
    pub clip_norm: Option<f64>,
    pub clip_value: Option<f64>,
}

/// Which group each parameter is in, and each group's resolved hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Groups {
    /// `of[t]`: group of parameter t.
    pub of: Vec<u32>,
    pub hyper: Vec<GroupHyper>,
    /// Parameter names per group (for messages and the metrics' run line).
    pub names: Vec<Vec<String>>,
}

impl OptimConfig {
    /// `torch.optim.SGD(lr, momentum)` with PyTorch's other defaults, one group, no clipping.
    pub fn sgd(lr: f64, momentum: f64) -> OptimConfig {
        OptimConfig {
            kind: OptimizerKind::Sgd,
            base: GroupHyper {
                lr,
                weight_decay: 0.0,
                momentum,
                dampening: 0.0,
                nesterov: false,
                betas: (0.9, 0.999),
                eps: 1e-8,
            },
            amsgrad: false,
            groups: Vec::new(),
            clip_norm: None,
            clip_value: None,
        }
    }

    /// Assign `names` (in parameter order) to groups as PyTorch's `param_groups` would hold them, and check every
    /// group's values as the optimizer's constructor does.
    pub fn groups(&self, names: &[String]) -> Result<Groups> {
        let mut of = vec![u32::MAX; names.len()];
        let (mut hyper, mut members) = (Vec::new(), Vec::new());
        for (g, spec) in self.groups.iter().enumerate() {
            let mine: Vec<usize> = (0..names.len())
                .filter(|&t| of[t] == u32::MAX && spec.params.iter().any(|p| glob_match(p, &names[t])))
                .collect();
            if mine.is_empty() {
                return Err(Error::Usage(format!(
                    "--param-groups: group {g} ({}) matches no parameter not already in an earlier group; \
                     the parameters are {}",
                    spec.params.join(", "),
                    names.join(", ")
                )));
            }
            for &t in &mine {
                of[t] = hyper.len() as u32;
            }
            members.push(mine.iter().map(|&t| names[t].clone()).collect::<Vec<_>>());
            hyper.push(self.resolve(spec, g)?);
        }
        let rest: Vec<usize> = (0..names.len()).filter(|&t| of[t] == u32::MAX).collect();
        if !rest.is_empty() {
            for &t in &rest {
                of[t] = hyper.len() as u32;
            }
            members.push(rest.iter().map(|&t| names[t].clone()).collect());
            hyper.push(self.resolve(&GroupSpec::default(), self.groups.len())?);
        }
        if hyper.len() > MAX_GROUPS {
            return Err(Error::Usage(format!(
                "--param-groups makes {} groups; at most {MAX_GROUPS} are supported",
                hyper.len()
            )));
        }
        Ok(Groups { of, hyper, names: members })
    }

    fn resolve(&self, s: &GroupSpec, g: usize) -> Result<GroupHyper> {
        let b = &self.base;
        let foreign: &[(&str, bool)] = match self.kind {
            OptimizerKind::Sgd => &[("betas", s.betas.is_some()), ("eps", s.eps.is_some())],
            _ => &[
                ("momentum", s.momentum.is_some()),
                ("dampening", s.dampening.is_some()),
                ("nesterov", s.nesterov.is_some()),
            ],
        };
        if let Some((key, _)) = foreign.iter().find(|(_, given)| *given) {
            return Err(Error::Usage(format!(
                "--param-groups: group {g} sets \"{key}\", which --optimizer {} does not have",
                self.kind.name()
            )));
        }
        let h = GroupHyper {
            lr: s.lr.unwrap_or(b.lr),
            weight_decay: s.weight_decay.unwrap_or(b.weight_decay),
            momentum: s.momentum.unwrap_or(b.momentum),
            dampening: s.dampening.unwrap_or(b.dampening),
            nesterov: s.nesterov.unwrap_or(b.nesterov),
            betas: s.betas.unwrap_or(b.betas),
            eps: s.eps.unwrap_or(b.eps),
        };
        let at = if self.groups.is_empty() { String::new() } else { format!(" (parameter group {g})") };
        validate(self.kind, &h).map_err(|m| Error::Usage(format!("{m}{at}")))?;
        Ok(h)
    }

    /// The groups as the schedulers see them: SGD groups carry momentum, Adam groups betas (whose beta1 a
    /// momentum-cycling schedule drives, as in PyTorch).
    pub fn scheduler_groups(&self, groups: &Groups) -> Vec<Group> {
        groups
            .hyper
            .iter()
            .map(|h| match self.kind {
                OptimizerKind::Sgd => Group::sgd(h.lr, h.momentum),
                OptimizerKind::Adam | OptimizerKind::AdamW => Group::adam(h.lr, h.betas),
            })
            .collect()
    }

    /// The command-line values as the optimizer's constructor checks its defaults (even when every parameter
    /// ends up in an explicit group), and `--clip-grad-norm` / `--clip-grad-value`: finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        validate(self.kind, &self.base).map_err(Error::Usage)?;
        for (flag, v) in [("--clip-grad-norm", self.clip_norm), ("--clip-grad-value", self.clip_value)] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(Error::Usage(format!("{flag} must be a finite number ≥ 0 (got {v})")));
            }
        }
        Ok(())
    }
}

/// PyTorch's constructor checks for one group.
fn validate(kind: OptimizerKind, h: &GroupHyper) -> std::result::Result<(), String> {
    let finite_nonneg = |flag: &str, v: f64| {
        if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(format!("{flag} must be a finite number ≥ 0 (got {v})")) }
    };
    finite_nonneg("--lr", h.lr)?;
    finite_nonneg("--weight-decay", h.weight_decay)?;
    match kind {
        OptimizerKind::Sgd => {
            finite_nonneg("--momentum", h.momentum)?;
            if !h.dampening.is_finite() {
                return Err(format!("--dampening must be finite (got {})", h.dampening));
            }
            if h.nesterov && (h.momentum <= 0.0 || h.dampening != 0.0) {
                return Err("--nesterov requires --momentum > 0 and --dampening 0 (as torch.optim.SGD)".into());
            }
        }
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            finite_nonneg("--eps", h.eps)?;
            for (i, b) in [h.betas.0, h.betas.1].into_iter().enumerate() {
                if !(0.0..1.0).contains(&b) {
                    return Err(format!("--betas: beta{} must be in [0, 1) (got {b})", i + 1));
                }
            }
        }
    }
    Ok(())
}
