//! Options a subcommand receives through the shared [`RunArgs`](super::train::RunArgs) but does not use: refused
//! (exit status 2, naming the option and the subcommand, with what to do instead) whether they come from the
//! command line or a `--config` file — never accepted and silently ignored.

use crate::{Error, Result};

/// Refuse the first option of `table` — `(clap id, why the subcommand cannot honour it)` — that is among
/// `given` (the ids given on the command line or in the config file, see `resume::explicit_options`).
pub fn refuse(subcommand: &str, given: &[String], table: &[(&str, &str)]) -> Result<()> {
    match table.iter().find(|(id, _)| given.iter().any(|g| g == id)) {
        Some((id, why)) => Err(Error::Usage(format!("{subcommand} does not use --{}: {why}", id.replace('_', "-")))),
        None => Ok(()),
    }
}

/// Options of a run's files and its continuation, which only `train` writes or reads.
pub const RUN_FILES: [(&str, &str); 6] = [
    ("save_weights", "it trains no model to keep; run `wgtrain train` with the options you pick"),
    ("metrics", "its results go to --json (and --csv)"),
    ("checkpoint_dir", "only `wgtrain train` writes checkpoints"),
    ("checkpoint_every", "only `wgtrain train` writes checkpoints"),
    ("keep_checkpoints", "only `wgtrain train` writes checkpoints"),
    ("resume", "only `wgtrain train` resumes a run"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_given_option_of_the_table_is_named() {
        let given = vec!["lr".to_string(), "checkpoint_dir".to_string()];
        let e = refuse("sweep", &given, &RUN_FILES).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("sweep does not use --checkpoint-dir"), "{e}");
        assert!(refuse("sweep", &["lr".to_string()], &RUN_FILES).is_ok());
    }
}
