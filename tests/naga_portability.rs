//! Portability without the hardware: every pipeline wgtrain can build — each [`KernelKey`], with the override
//! constants it is specialised with — is translated through naga to SPIR-V (Vulkan), MSL (Metal) and HLSL
//! (DX12), the way wgpu's backends translate it, both as the trusted modules the backend builds (no bounds
//! checks, no loop guards) and as the checked ones (`WGTRAIN_SHADER_CHECKS=1`). Metal and DX12 are in the
//! mission and no machine here has them: a kernel that uses something one of those languages cannot express
//! fails here rather than on a user's Mac or Windows machine. Needs no GPU.

use std::collections::BTreeMap;

use naga::back::pipeline_constants::process_overrides;
use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use wgtrain::gpu::kernels::{KernelKey, source};

fn validate(module: &naga::Module) -> Result<ModuleInfo, String> {
    Validator::new(ValidationFlags::all(), Capabilities::default()).validate(module).map_err(|e| format!("{e:?}"))
}

fn policies(checked: bool) -> BoundsCheckPolicies {
    let p = if checked { BoundsCheckPolicy::Restrict } else { BoundsCheckPolicy::Unchecked };
    BoundsCheckPolicies { index: p, buffer: p, image_load: p, binding_array: p }
}

/// `k`'s entry point, specialised, in the three languages; `Err` names the language and naga's message.
fn translate(k: KernelKey, module: &naga::Module, info: &ModuleInfo, checked: bool) -> Result<[usize; 3], String> {
    let constants: naga::back::PipelineConstants = k.constants().iter().map(|&(n, v)| (n.to_string(), v)).collect();
    let stage = naga::ShaderStage::Compute;
    let (module, info) = process_overrides(module, info, Some((stage, k.entry())), &constants)
        .map_err(|e| format!("overrides: {e:?}"))?;
    // process_overrides leaves a module the backends take as it is; validate it again as wgpu would.
    validate(&module).map_err(|e| format!("after overrides: {e}"))?;

    let spv_options = naga::back::spv::Options {
        bounds_check_policies: policies(checked),
        force_loop_bounding: checked,
        ..Default::default()
    };
    let spv_pipeline = naga::back::spv::PipelineOptions { shader_stage: stage, entry_point: k.entry().to_string() };
    let spv = naga::back::spv::write_vec(&module, &info, &spv_options, Some(&spv_pipeline))
        .map_err(|e| format!("SPIR-V: {e}"))?;

    let msl_options = naga::back::msl::Options {
        // Metal 2.4: what wgpu asks for on current macOS; nothing here needs newer.
        lang_version: (2, 4),
        bounds_check_policies: policies(checked),
        force_loop_bounding: checked,
        zero_initialize_workgroup_memory: false,
        ..Default::default()
    };
    let msl_pipeline =
        naga::back::msl::PipelineOptions { entry_point: Some((stage, k.entry().to_string())), ..Default::default() };
    let (msl, _) =
        naga::back::msl::write_string(&module, &info, &msl_options, &msl_pipeline).map_err(|e| format!("MSL: {e}"))?;

    let hlsl_options = naga::back::hlsl::Options {
        // Shader model 6.0: wgpu's DX12 backend compiles with DXC, which starts there.
        shader_model: naga::back::hlsl::ShaderModel::V6_0,
        restrict_indexing: checked,
        force_loop_bounding: checked,
        zero_initialize_workgroup_memory: false,
        ..Default::default()
    };
    let hlsl_pipeline = naga::back::hlsl::PipelineOptions { entry_point: Some((stage, k.entry().to_string())) };
    let mut hlsl = String::new();
    naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_options, &hlsl_pipeline)
        .write(&module, &info, None)
        .map_err(|e| format!("HLSL: {e}"))?;
    Ok([spv.len(), msl.len(), hlsl.len()])
}

#[test]
fn every_kernel_translates_to_spirv_msl_and_hlsl() {
    let keys = KernelKey::all();
    assert!(keys.len() > 50, "only {} kernel keys", keys.len());
    let mut modules: BTreeMap<&str, (naga::Module, ModuleInfo)> = BTreeMap::new();
    let mut failures = Vec::new();
    for k in &keys {
        let (module, info) = modules.entry(k.file()).or_insert_with(|| {
            let src = source(k.file()).unwrap();
            let m =
                naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{}: {}", k.file(), e.emit_to_string(src)));
            let info = validate(&m).unwrap_or_else(|e| panic!("{}: {e}", k.file()));
            (m, info)
        });
        for checked in [false, true] {
            match translate(*k, module, info, checked) {
                // Each language's text must hold the entry point, not an empty shell.
                Ok(sizes) => assert!(sizes.iter().all(|&n| n > 100), "{k}: suspiciously small output {sizes:?}"),
                Err(e) => failures.push(format!("{k} ({}): {e}", if checked { "checked" } else { "trusted" })),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} translations failed:\n{}",
        failures.len(),
        2 * keys.len(),
        failures.join("\n")
    );
}
