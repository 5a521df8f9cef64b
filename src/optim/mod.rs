//! Optimizers, host side: configuration and parameter groups ([`config`]), the per-step uniform structs the
//! update kernels read ([`hyper`]), and [`Optimizer`], which owns its state tensors and uniform. The updates
//! themselves are backend ops (`sgd_update`, `adam_update`), written out exactly as `torch.optim` defines them.
//!
//! A new optimizer touches its file here (state, uniform), its op (trait + CPU + one `.wgsl`), and the CLI's
//! `--optimizer` list — nothing in the model or the loop.

pub(crate) mod check;
pub mod config;
pub mod hyper;
pub mod optimizer;

pub use config::{DEFAULT_BETAS, DEFAULT_EPS, GroupHyper, GroupSpec, Groups, OptimConfig, OptimizerKind, glob_match};
pub use hyper::{AdamGroup, AdamHyper, ClipParams, MAX_GROUPS, SgdGroup, SgdHyper};
pub use optimizer::Optimizer;
