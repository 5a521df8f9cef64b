//! The public PyTorch trajectories (tests/fixtures/trajectory, shared with tests/trajectory.rs) reproduced by
//! `wgtrain train --backend gpu`, within the same 1e-4 of PyTorch's f64 run as the CPU backend.
mod common;
mod gpu_common;

fn check(case: &str) {
    let Some(args) = gpu_common::gpu_backend_args(case) else { return };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::check_trajectory(case, &args);
}

#[test]
fn gpu_sgd_momentum_weight_decay() {
    check("public_sgd_momentum");
}

#[test]
fn gpu_plain_sgd_with_step_schedule() {
    check("public_sgd_plain_step");
}

#[test]
fn gpu_nesterov_with_batch_wraparound() {
    check("public_nesterov_wrap");
}
