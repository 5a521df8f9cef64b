//! The command line (contract: docs/cli.md). Each subcommand lives in its own file.

use clap::{Parser, Subcommand};

pub mod backend_choice;
pub mod compare;
pub mod devices;
pub mod lr_find;
pub mod resume;
pub mod schedule;
pub mod sweep;
pub mod train;

#[derive(Parser, Debug)]
#[command(
    name = "wgtrain",
    version,
    about = "Train neural networks on any GPU through wgpu, with PyTorch-exact learning-rate schedules"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train the sample CNN on MNIST.
    Train(Box<train::TrainArgs>),
    /// Run the same seeded training on several backends; compare speed and numeric agreement.
    Compare(Box<compare::CompareArgs>),
    /// Print the learning rate (and momentum) a schedule gives at every step, optionally as a plot.
    Schedule(schedule::ScheduleArgs),
    /// The learning-rate range test: train with an exponentially growing lr and suggest one.
    LrFind(Box<lr_find::LrFindArgs>),
    /// Train one run per configuration of a grid or random search and rank them.
    Sweep(Box<sweep::SweepArgs>),
    /// List the GPU adapters wgpu finds and say which `--backend auto` would pick.
    Devices(devices::DevicesArgs),
}

/// Parse the command line, run it, and turn errors into the contract's exit codes (2: bad usage or input).
pub fn main() -> i32 {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,wgpu_hal=off")).try_init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Compare(a) => compare::run(*a),
        Command::Schedule(a) => schedule::run(a),
        Command::Devices(a) => devices::run(a),
        Command::LrFind(a) => lr_find::run(*a),
        Command::Sweep(a) => sweep::run(*a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
