//! Hyper-parameter sweeps (docs/cli.md, `sweep`): the spec, the trials it describes (a grid's Cartesian product,
//! or N random draws seeded by `--seed`), and the ranking. Each trial is a set of `train` options applied on top
//! of the command line's, so a trial is exactly the `train` run with those options.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

pub mod plot;

use crate::{Error, Result};

/// The most trials a sweep runs (a grid's product or `--trials`): they are all drawn before training starts.
pub const MAX_TRIALS: usize = 100_000;

/// Options a spec may not vary: every trial would write the same file.
const NOT_SWEEPABLE: [&str; 2] = ["metrics", "save_weights"];

/// One option's values: a list (grid or random choice), or a distribution (random only).
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    List(Vec<Value>),
    LogUniform(f64, f64),
    Uniform(f64, f64),
}

/// A parsed spec: option name (underscored, as `RunArgs` serializes) → values, in the spec's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub options: Vec<(String, Values)>,
}

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

impl Spec {
    /// Parse `--grid`/`--random` (JSON or @FILE). `known` lists the train options (as serialized); a key may also
    /// be written with dashes. Distributions are refused for a grid.
    pub fn parse(arg: &str, flag: &str, known: &[String], random: bool) -> Result<Spec> {
        let text = match arg.strip_prefix('@') {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|e| usage(format!("{flag}: cannot read {path}: {e}")))?
            }
            None => arg.to_string(),
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| usage(format!("{flag} is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(usage(format!("{flag} must be a JSON object mapping train options to values")));
        };
        if map.is_empty() {
            return Err(usage(format!("{flag} is empty: name at least one option to sweep")));
        }
        let mut options = Vec::new();
        for (key, v) in map {
            let name = key.trim_start_matches("--").replace('-', "_");
            if NOT_SWEEPABLE.contains(&name.as_str()) {
                return Err(usage(format!("{flag}: `{key}` cannot be swept (every trial would write the same file)")));
            }
            if !known.contains(&name) {
                return Err(usage(format!("{flag}: `{key}` is not a train option")));
            }
            let values = match v {
                Value::Array(list) if list.is_empty() => {
                    return Err(usage(format!("{flag}: `{key}` has an empty list of values")));
                }
                Value::Array(list) => Values::List(list),
                Value::Object(o) if random => distribution(flag, &key, &o)?,
                Value::Object(_) => {
                    return Err(usage(format!("{flag}: `{key}`: distributions need --random; a grid takes a list")));
                }
                other => return Err(usage(format!("{flag}: `{key}` must be a list of values, got {other}"))),
            };
            options.push((name, values));
        }
        Ok(Spec { options })
    }

    /// Every trial: the grid's Cartesian product (last option varying fastest), or `trials` random draws.
    pub fn trials(&self, random: Option<(usize, u64)>) -> Result<Vec<Map<String, Value>>> {
        match random {
            None => {
                let mut out = vec![Map::new()];
                for (name, values) in &self.options {
                    let Values::List(list) = values else { unreachable!("grids hold lists only") };
                    out = out
                        .into_iter()
                        .flat_map(|t| {
                            list.iter().map(move |v| {
                                let mut t = t.clone();
                                t.insert(name.clone(), v.clone());
                                t
                            })
                        })
                        .collect();
                    if out.len() > MAX_TRIALS {
                        return Err(usage(format!("the grid has more than {MAX_TRIALS} trials (at `{name}`)")));
                    }
                }
                Ok(out)
            }
            Some((n, seed)) => {
                if n == 0 {
                    return Err(usage("--trials must be at least 1".into()));
                }
                // Checked before anything is drawn: the trials are materialised up front.
                if n > MAX_TRIALS {
                    return Err(usage(format!("--trials {n}: a sweep runs at most {MAX_TRIALS} trials")));
                }
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4545_5053);
                Ok((0..n)
                    .map(|_| {
                        self.options
                            .iter()
                            .map(|(name, values)| {
                                let v = match values {
                                    Values::List(l) => l[rng.random_range(0..l.len())].clone(),
                                    Values::LogUniform(lo, hi) => {
                                        Value::from((lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp())
                                    }
                                    Values::Uniform(lo, hi) => Value::from(lo + rng.random::<f64>() * (hi - lo)),
                                };
                                (name.clone(), v)
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }
}

fn distribution(flag: &str, key: &str, o: &Map<String, Value>) -> Result<Values> {
    let bad =
        || usage(format!("{flag}: `{key}` must be a list, {{\"log_uniform\": [LO, HI]}} or {{\"uniform\": [LO, HI]}}"));
    let [(kind, range)] = o.iter().collect::<Vec<_>>()[..] else { return Err(bad()) };
    let pair = range.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
    let (Some(lo), Some(hi)) = (pair[0].as_f64(), pair[1].as_f64()) else { return Err(bad()) };
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(usage(format!("{flag}: `{key}`: the range [{lo}, {hi}] must be finite with LO < HI")));
    }
    match kind.as_str() {
        "log_uniform" if lo > 0.0 => Ok(Values::LogUniform(lo, hi)),
        "log_uniform" => Err(usage(format!("{flag}: `{key}`: log_uniform needs LO > 0 (got {lo})"))),
        "uniform" => Ok(Values::Uniform(lo, hi)),
        _ => Err(bad()),
    }
}

/// A value as a `train` option sees it: schedules, layer lists and group lists are JSON text on the command line.
pub fn as_option_value(name: &str, v: &Value) -> Value {
    match (name, v) {
        ("schedule" | "model" | "param_groups", Value::Object(_) | Value::Array(_)) => Value::String(v.to_string()),
        _ => v.clone(),
    }
}

/// Trial indices ranked by objective, lowest first; trials without a finite objective (diverged) last, in order.
pub fn rank(objectives: &[Option<f64>]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..objectives.len()).collect();
    idx.sort_by(|&a, &b| {
        let key = |i: usize| objectives[i].filter(|v| v.is_finite());
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(&b),
        }
    });
    idx
}
