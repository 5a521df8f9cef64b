//! The long trajectory3 cases (24 steps of LeNet-5 under Adam + StepLR and under SGD with momentum) reproduced by
//! `wgtrain train --backend gpu`, within the same bound of PyTorch's float64 run as the CPU backend:
//! max(1e-5, 4 × the larger of PyTorch's own float32 spreads).
mod common;
mod gpu_common;

fn check(case: &str) {
    let Some(args) = gpu_common::gpu_backend_args(case) else { return };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::check_trajectory3(case, &args);
}

#[test]
fn gpu_lenet5_adam_with_step_schedule_long() {
    check("public_lenet_adam_long");
}

#[test]
fn gpu_lenet5_sgd_momentum_long() {
    check("public_lenet_sgd_long");
}
