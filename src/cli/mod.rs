//! The command line (contract: docs/cli.md). Each subcommand lives in its own file.

use clap::{Parser, Subcommand};

use crate::{Error, output};

pub mod backend_choice;
pub mod compare;
pub mod config;
pub mod devices;
pub mod driver_env;
pub mod help;
pub mod lr_find;
pub mod resume;
pub mod run_info;
pub mod schedule;
pub mod sweep;
mod sweep_parallel;
pub mod train;
mod unused;

#[derive(Parser, Debug)]
#[command(
    name = "wgtrain",
    version,
    about = "Train neural networks on any GPU through wgpu, with PyTorch-exact learning-rate schedules"
)]
pub struct Cli {
    /// No progress bar, per-epoch lines or notes on stderr (results on stdout and errors are still printed).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand takes negative numbers as values (`--seed -1` is an invalid value for `--seed`, named as
/// such, not an unknown option `-1`).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train the sample CNN on MNIST.
    #[command(after_help = help::TRAIN_EXAMPLES, allow_negative_numbers = true)]
    Train(Box<train::TrainArgs>),
    /// Run the same seeded training on several backends; compare speed and numeric agreement.
    #[command(after_help = help::COMPARE_EXAMPLES, allow_negative_numbers = true)]
    Compare(Box<compare::CompareArgs>),
    /// Print the learning rate (and momentum) a schedule gives at every step, optionally as a plot.
    #[command(after_help = help::SCHEDULE_EXAMPLES, allow_negative_numbers = true)]
    Schedule(schedule::ScheduleArgs),
    /// The learning-rate range test: train with an exponentially growing lr and suggest one.
    #[command(allow_negative_numbers = true)]
    LrFind(Box<lr_find::LrFindArgs>),
    /// Train one run per configuration of a grid or random search and rank them.
    #[command(allow_negative_numbers = true)]
    Sweep(Box<sweep::SweepArgs>),
    /// List the GPU adapters wgpu finds and say which `--backend auto` would pick.
    #[command(after_help = help::DEVICES_EXAMPLES, allow_negative_numbers = true)]
    Devices(devices::DevicesArgs),
}

/// Parse the command line, run it, and turn errors into the contract's exit codes (2: bad usage or input,
/// 1: other failures, 0 also when stdout was closed by its reader). Nothing here panics on a failing stream.
pub fn main() -> i32 {
    driver_env::quiet_driver_probing();
    let code = parse_and_run();
    driver_env::cleanup();
    code
}

fn parse_and_run() -> i32 {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,wgpu_hal=off")).try_init();
    let (argv, from_file) = match config::apply(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            output::stdio::error_line(&format!("error: {e}"));
            return e.exit_code();
        }
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            // --help/--version go to stdout, usage errors to stderr; a full stream is a failure (1), a closed
            // one is not.
            let code = if e.use_stderr() { 2 } else { 0 };
            let printed = e.print();
            if let Some(applied) = from_file.filter(|_| e.use_stderr()) {
                // clap names the options, not where they came from.
                output::stdio::error_line(&format!(
                    "note: options taken from --config {}: {}",
                    applied.file,
                    applied.flags.join(" ")
                ));
            }
            return match printed {
                Err(io) if io.kind() != std::io::ErrorKind::BrokenPipe => code.max(1),
                _ => code,
            };
        }
    };
    output::stdio::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Compare(a) => compare::run(*a),
        Command::Schedule(a) => schedule::run(a),
        Command::Devices(a) => devices::run(a),
        Command::LrFind(a) => lr_find::run(*a),
        Command::Sweep(a) => sweep::run(*a),
    };
    let code = match result {
        Ok(()) | Err(Error::Closed(_)) => 0,
        Err(e) => {
            output::stdio::error_line(&format!("error: {e}"));
            e.exit_code()
        }
    };
    // The work succeeded but its notes or progress could not be written (stderr full or failing): say so
    // through the exit status, the only channel left.
    if code == 0 && output::stdio::stderr_failure().is_some() { 1 } else { code }
}
