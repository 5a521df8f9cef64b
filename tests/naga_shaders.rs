//! Every WGSL file parses and validates with naga, the files on disk are exactly the ones the code loads,
//! and every kernel's entry point and override constants exist. Needs no GPU.

use std::collections::BTreeSet;

use wgtrain::gpu::kernels::{Bind, KernelKey, SHADERS};

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
    let used: BTreeSet<String> = KernelKey::all().iter().map(|k| k.file().to_string()).collect();
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
    let keys = KernelKey::all();
    // The combinations the shaders implement (see KernelKey::exists); a change here is a new variant.
    assert_eq!(keys.len(), 63, "{keys:#?}");
    let mut entries = BTreeSet::new();
    for k in keys {
        let (file, entry, layout) = k.shader();
        entries.insert((file.to_string(), entry.to_string()));
        let src = wgtrain::gpu::kernels::source(file).unwrap();
        let m = parse(file, src);
        let ep = m.entry_points.iter().find(|e| e.name == entry);
        let ep = ep.unwrap_or_else(|| panic!("{k}: no entry point `{entry}` in {file}"));
        assert_eq!(ep.stage, naga::ShaderStage::Compute, "{k}");
        for (name, _) in k.constants() {
            assert!(
                m.overrides.iter().any(|(_, o)| o.name.as_deref() == Some(name)),
                "{k}: override `{name}` not declared in {file}"
            );
        }
        // Every slot of the family's named layout is declared in the shader, with the same kind.
        for slot in layout {
            let var =
                m.global_variables.iter().find(|(_, g)| g.binding.as_ref().is_some_and(|b| b.binding == slot.binding));
            let (_, var) =
                var.unwrap_or_else(|| panic!("{k}: binding {} (`{}`) not declared in {file}", slot.binding, slot.name));
            let kind = match var.space {
                naga::AddressSpace::Uniform => Bind::Uniform,
                naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
                    Bind::ReadWrite
                }
                naga::AddressSpace::Storage { .. } => Bind::Read,
                other => panic!("{k}: binding {} in address space {other:?}", slot.binding),
            };
            assert_eq!(
                kind, slot.kind,
                "{k}: binding {} (`{}`) is declared as {kind:?} in {file}",
                slot.binding, slot.name
            );
        }
        let names: BTreeSet<&str> = layout.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), layout.len(), "{k}: two slots with one name");
    }
    // Every compute entry point of every file is used by some key.
    let declared: BTreeSet<(String, String)> = SHADERS
        .iter()
        .flat_map(|(f, src)| {
            let m = parse(f, src);
            m.entry_points.iter().map(|e| (f.to_string(), e.name.clone())).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(entries, declared, "entry points used by the kernel keys vs declared in shaders/");
}

#[test]
fn kernel_keys_read_as_family_mode_epilogue_tile() {
    use wgtrain::gpu::kernels::{Epilogue, Family, Mode, Tile};
    let k = KernelKey::new(Family::Conv2d, Mode::BackwardInput).with(Epilogue::Mask).tile(Tile::M32);
    assert_eq!(k.to_string(), "Conv2d/BackwardInput+Mask[M32]");
    assert_eq!(k.pipeline_label(), "conv2d.wgsl:conv2d[MODE=1,MASK=1,TM=2,TN=8]");
    assert_eq!(KernelKey::new(Family::Sgd, Mode::Single).to_string(), "Sgd");
    assert!(!KernelKey::new(Family::Matmul, Mode::BackwardWeight).with(Epilogue::Mask).exists());
}
