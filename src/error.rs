//! The one error type of wgtrain. Every variant names the problem in words a user can act on;
//! [`Error::exit_code`] maps it to the CLI contract (2: bad usage or input, 1: anything else).

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line value or combination that cannot work (batch size 0, unknown backend, …).
    #[error("{0}")]
    Usage(String),
    /// A dataset file that is missing, truncated or malformed.
    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },
    /// A weights file (safetensors) with missing/extra tensors, wrong shapes or dtypes.
    #[error("{path}: {msg}")]
    Weights { path: PathBuf, msg: String },
    /// An invalid learning-rate schedule (names the field and the allowed range).
    #[error("invalid schedule: {0}")]
    Schedule(String),
    /// A layer list that cannot be built or does not fit its input (names the layer).
    #[error("invalid model: {0}")]
    Model(String),
    /// Tensor shapes that do not fit the op.
    #[error("shape mismatch in {op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// No GPU adapter matched the request.
    #[error("{0}")]
    NoAdapter(String),
    /// A request the device cannot satisfy (buffer larger than its limits, …).
    #[error("device limit: {0}")]
    DeviceLimit(String),
    /// A WGSL shader that failed to compile or validate.
    #[error("shader {file} (entry point `{entry}`): {msg}")]
    Shader { file: String, entry: String, msg: String },
    /// Any other GPU failure (device lost, out of memory, validation error at submit).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// Training diverged: the loss became NaN or infinite.
    #[error(
        "loss became non-finite ({loss}) at step {step} with learning rate {lr}; stopping before any weights are saved"
    )]
    NonFinite { step: usize, lr: f64, loss: f32 },
    /// The loss exploded past the run's divergence limit (sweeps), though still finite.
    #[error("loss {loss} at step {step} (learning rate {lr}) exceeds the divergence limit (first loss {first})")]
    Diverged { step: usize, lr: f64, loss: f32, first: f32 },
    /// Training ended with NaN/inf in a parameter although every loss was finite.
    #[error("parameter {name} holds non-finite values after {steps} steps; not saving weights")]
    NonFiniteWeights { name: String, steps: usize },
    /// stdout was closed by its reader (`wgtrain … | head`): stop quietly, exit status 0.
    #[error("{0} was closed")]
    Closed(&'static str),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Exit status for the CLI: 2 for bad usage or bad input, 1 for other failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::Data { .. }
            | Error::Weights { .. }
            | Error::Schedule(_)
            | Error::Model(_)
            | Error::Shape { .. }
            | Error::NoAdapter(_)
            | Error::DeviceLimit(_) => 2,
            // A missing input, or a directory where a file was expected (or the reverse), is bad input.
            Error::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory | std::io::ErrorKind::NotADirectory
                ) =>
            {
                2
            }
            Error::Closed(_) => 0,
            _ => 1,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
}
