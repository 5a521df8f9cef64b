//! The WGSL parameter structs match the Rust `#[repr(C)]` structs of `gpu::params` (naga reflection: size,
//! member names and offsets), in every file that declares them. Needs no GPU.

use std::collections::BTreeSet;

use wgtrain::gpu::kernels::SHADERS;
use wgtrain::gpu::params::layouts;

#[test]
fn wgsl_param_structs_match_rust_layouts() {
    let rust = layouts();
    let mut seen = BTreeSet::new();
    for (file, src) in SHADERS {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
        // Structs used by uniform bindings must all be mirrored in Rust.
        for (_, g) in module.global_variables.iter() {
            if g.space == naga::AddressSpace::Uniform {
                // An array of blocks (the update kernels' one block per member) is checked by its element.
                // Such an array holds exactly MAX_MEMBERS blocks: the GPU backend sizes the uniform for that many.
                let ty = match module.types[g.ty].inner {
                    naga::TypeInner::Array { base, size, .. } => {
                        let members = wgtrain::backend::MAX_MEMBERS as u32;
                        assert!(
                            matches!(size, naga::ArraySize::Constant(n) if n.get() == members),
                            "{file}: a uniform array of {size:?} blocks, expected MAX_MEMBERS = {members}"
                        );
                        base
                    }
                    _ => g.ty,
                };
                let name = module.types[ty].name.clone().unwrap_or_default();
                assert!(
                    rust.iter().any(|l| l.name == name),
                    "{file}: uniform struct `{name}` has no Rust mirror in gpu::params"
                );
            }
        }
        for (_, ty) in module.types.iter() {
            let (Some(name), naga::TypeInner::Struct { members, span }) = (&ty.name, &ty.inner) else { continue };
            let Some(l) = rust.iter().find(|l| l.name == name) else { continue };
            seen.insert(l.name);
            assert_eq!(*span as usize, l.size, "{file}: size of {name}");
            let wgsl: Vec<(String, usize)> =
                members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize)).collect();
            let rs: Vec<(String, usize)> = l.fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
            assert_eq!(wgsl, rs, "{file}: members (name, offset) of {name}");
        }
    }
    let all: BTreeSet<&str> = rust.iter().map(|l| l.name).collect();
    assert_eq!(seen, all, "Rust parameter structs that no shader declares");
}
