//! TEMPORARY minimal scheduler (fixed and step) with the API of the scheduler issue; replaced by the full library.
use crate::{Error, Result};

#[derive(Clone, Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleConfig {
    Step { step_size: i64, #[serde(default = "tenth")] gamma: f64 },
}
fn tenth() -> f64 { 0.1 }

impl ScheduleConfig {
    pub fn parse(arg: &str) -> Result<ScheduleConfig> {
        serde_json::from_str(arg).map_err(|e| Error::Schedule(e.to_string()))
    }
}

#[derive(Clone, Debug)]
pub struct Scheduler { lr: f64, momentum: f64, t: i64, cfg: Option<ScheduleConfig> }

impl Scheduler {
    pub fn new(cfg: &ScheduleConfig, base_lr: f64, momentum: f64) -> Result<Scheduler> {
        Ok(Scheduler { lr: base_lr, momentum, t: 0, cfg: Some(cfg.clone()) })
    }
    pub fn fixed(lr: f64, momentum: f64) -> Scheduler { Scheduler { lr, momentum, t: 0, cfg: None } }
    pub fn lr(&self) -> f64 { self.lr }
    pub fn momentum(&self) -> f64 { self.momentum }
    pub fn cycles_momentum(&self) -> bool { false }
    pub fn needs_metric(&self) -> bool { false }
    pub fn step_metric(&mut self, _m: f64) -> Result<()> { Ok(()) }
    pub fn check_run(&self, _steps: usize) -> Result<()> { Ok(()) }
    pub fn step(&mut self) -> Result<()> {
        self.t += 1;
        if let Some(ScheduleConfig::Step { step_size, gamma }) = &self.cfg {
            if self.t % step_size == 0 { self.lr *= gamma; }
        }
        Ok(())
    }
}
