//! Learning-rate schedulers with PyTorch's exact semantics (docs/schedules.md): the same lr (and momentum)
//! at every step as `torch.optim.lr_scheduler`, from PyTorch's own recursions, in f64 with Python's
//! arithmetic (floor modulo, ZeroDivisionError → `Err`).
//!
//! Two levels:
//! - [`Scheduler`] + [`ScheduleConfig`] (the JSON format of schedules.md §6): what `wgtrain train` and
//!   `wgtrain schedule` use. [`sequence`] gives a whole schedule.
//! - [`LrScheduler`] on `&mut [Group]`: PyTorch's classes one to one, with param groups that have their own
//!   base lrs, and closures for LambdaLR/MultiplicativeLR ([`Factor::from_fn`]).
//!
//! One file per family: [`step`] (StepLR, MultiStepLR, ExponentialLR), [`linear`] (ConstantLR, LinearLR,
//! PolynomialLR), [`lambda`] (LambdaLR, MultiplicativeLR), [`cosine`] (CosineAnnealingLR,
//! CosineAnnealingWarmRestarts), [`cyclic`] (CyclicLR), [`one_cycle`] (OneCycleLR), [`plateau`]
//! (ReduceLROnPlateau), [`composite`] (SequentialLR, ChainedScheduler), and from other libraries [`hf`]
//! (transformers), [`noam`] (Burn), [`optax`].
//!
//! Driver contract (PyTorch's): `build; loop { optimizer step uses lr(); step() }`, so the lr of optimizer
//! step k is the value at t = k.

pub mod composite;
pub mod config;
pub mod cosine;
pub mod cyclic;
pub mod dispatch;
pub mod group;
pub mod hf;
pub mod lambda;
pub mod linear;
pub mod noam;
pub mod one_cycle;
pub mod optax;
pub mod plateau;
pub mod pymath;
pub mod scheduler;
pub mod state;
pub mod step;

pub use composite::{ChainedCfg, ChainedLr, SequentialCfg, SequentialLr};
pub use config::{KINDS, ScheduleConfig};
pub use cosine::{CosineAnnealingCfg, CosineAnnealingLr, WarmRestartsCfg, WarmRestartsLr};
pub use cyclic::{CyclicCfg, CyclicLr, CyclicMode, ScaleMode};
pub use dispatch::LrScheduler;
pub use group::{Group, PerGroup};
pub use hf::{CosineWithWarmupCfg, InverseSqrtCfg};
pub use lambda::{Factor, LambdaLr, LrFn, MultiplicativeCfg, MultiplicativeLr};
pub use linear::{ConstantCfg, ConstantLr, LinearCfg, LinearLr, PolynomialCfg, PolynomialLr};
pub use noam::NoamCfg;
pub use one_cycle::{Anneal, OneCycleCfg, OneCycleLr};
pub use optax::{SgdrCfg, WarmupCosineDecayCfg};
pub use plateau::{PlateauCfg, PlateauLr, PlateauMode, ThresholdMode};
pub use scheduler::{Scheduler, sequence, sequence_groups};
pub use state::{SchedState, SchedulerState};
pub use step::{ExponentialCfg, ExponentialLr, MultiStepCfg, MultiStepLr, StepCfg, StepLr};
