#!/usr/bin/env bash
# Build everything the GPU measurements need and pack it for a machine without cargo (the lent H100, see
# ../shared/gpu/README.md): stripped release binaries in .bundle/bin.tar.xz, the Vulkan loader and NVIDIA's
# EGL ICD in .gpu/, full MNIST in .mnist/. All three are git-ignored; carry them: [".gpu", ".mnist", ".bundle"]
# and run `bash scripts/device/measure.sh` there.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared}
for d in .gpu .mnist .bundle; do grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >> .git/info/exclude; done
mkdir -p .gpu .mnist .bundle/bin
cp "$SHARED/gpu/libvulkan.so.1" "$SHARED/gpu/nvidia_egl_icd.json" .gpu/
cp "$SHARED"/data/mnist/*.gz .mnist/
cargo build --release --examples
cargo test --release --no-run
cargo bench --no-run
strip -o .bundle/bin/wgtrain target/release/wgtrain
strip -o .bundle/bin/profile_step target/release/examples/profile_step
strip -o .bundle/bin/population_bench target/release/examples/population_bench
strip -o .bundle/bin/first_step_ready target/release/examples/first_step_ready
strip -o .bundle/bin/conv_tiles target/release/examples/conv_tiles
for t in gpu_kernels gpu_tiles gpu_guards gpu_parity gpu_trajectory gpu_errors gpu_recipe compare_backends train_loop train_step kernels; do
    f=$(ls -t target/release/deps/$t-* | grep -v '\.d$' | head -1)
    strip -o .bundle/bin/$t "$f"
done
tar -C .bundle -cJf .bundle/bin.tar.xz bin && rm -rf .bundle/bin
du -sh .gpu .mnist .bundle
