//! Every WGSL file parses and validates with naga, the files on disk are exactly the ones the code loads,
//! and every kernel's entry point and override constants exist. Needs no GPU.

use std::collections::BTreeSet;

use wgtrain::gpu::kernels::{Kernel, SHADERS};

fn parse(file: &str, src: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    if let Err(e) = v.validate(&module) {
        panic!("{file}: {}", e.emit_to_string(src));
    }
    module
}

#[test]
fn shader_files_on_disk_equal_the_loaded_set() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    let loaded: BTreeSet<String> = SHADERS.iter().map(|(f, _)| f.to_string()).collect();
    assert!(!loaded.is_empty());
    assert_eq!(on_disk, loaded, "shaders/ and gpu::kernels::SHADERS disagree");
    // The compiled-in text is the file on disk (include_str!), not a stale copy.
    for (f, src) in SHADERS {
        assert_eq!(std::fs::read_to_string(dir.join(f)).unwrap(), *src, "{f}");
    }
    // Every loaded file is used by some kernel.
    let used: BTreeSet<String> = Kernel::ALL.iter().map(|k| k.spec().file.to_string()).collect();
    assert_eq!(used, loaded, "a shader file that no kernel uses");
}

#[test]
fn every_shader_parses_and_validates() {
    for (file, src) in SHADERS {
        let m = parse(file, src);
        assert!(!m.entry_points.is_empty(), "{file} has no entry point");
    }
}

#[test]
fn every_kernel_entry_point_and_override_exists() {
    for &k in Kernel::ALL {
        let spec = k.spec();
        let src = wgtrain::gpu::kernels::source(spec.file).unwrap();
        let m = parse(spec.file, src);
        let ep = m.entry_points.iter().find(|e| e.name == spec.entry);
        let ep = ep.unwrap_or_else(|| panic!("{k:?}: no entry point `{}` in {}", spec.entry, spec.file));
        assert_eq!(ep.stage, naga::ShaderStage::Compute, "{k:?}");
        for (name, _) in spec.constants {
            assert!(
                m.overrides.iter().any(|(_, o)| o.name.as_deref() == Some(*name)),
                "{k:?}: override `{name}` not declared in {}",
                spec.file
            );
        }
        // Every resource the shader declares with a binding used by this kernel must be in its list and
        // vice versa for the bindings it lists.
        let declared: BTreeSet<u32> =
            m.global_variables.iter().filter_map(|(_, g)| g.binding.as_ref().map(|b| b.binding)).collect();
        for (b, _) in spec.bindings {
            assert!(declared.contains(b), "{k:?}: binding {b} not declared in {}", spec.file);
        }
    }
}
