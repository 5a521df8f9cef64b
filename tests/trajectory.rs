//! The public PyTorch trajectories, reproduced by `wgtrain train --backend cpu`.
mod common;

#[test]
fn sgd_momentum_weight_decay() {
    common::check_trajectory("public_sgd_momentum", &["--backend", "cpu"]);
}

#[test]
fn plain_sgd_with_step_schedule() {
    common::check_trajectory("public_sgd_plain_step", &["--backend", "cpu"]);
}

#[test]
fn nesterov_with_batch_wraparound() {
    common::check_trajectory("public_nesterov_wrap", &["--backend", "cpu"]);
}
