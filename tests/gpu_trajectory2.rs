//! The trajectory2 cases (layer lists, Adam/AdamW, groups, clipping) reproduced by `wgtrain train --backend gpu`,
//! within the same tolerance of PyTorch's float64 run as the CPU backend.
mod common;
mod gpu_common;

fn check(case: &str) {
    let Some(args) = gpu_common::gpu_backend_args(case) else { return };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::check_trajectory2(case, &args);
}

#[test]
fn gpu_adamw_with_cosine_schedule() {
    check("public_adamw_cosine");
}

#[test]
fn gpu_sgd_with_gradient_norm_clipping() {
    check("public_sgd_clip_norm");
}

#[test]
fn gpu_lenet5_layer_list_with_step_schedule() {
    check("public_lenet_sgd");
}

#[test]
fn gpu_mlp_adam_with_param_groups_and_one_cycle() {
    check("public_mlp_adam_groups");
}
