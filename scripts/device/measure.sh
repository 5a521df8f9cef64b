#!/usr/bin/env bash
# On the GPU machine, from the repository root, after scripts/device/bundle.sh packed what it needs:
# every GPU figure docs/performance.md asks for, in one go (about 6 minutes on an H100). Output is also
# written to $OUT/log when $OUT is set.
set -x
export LD_LIBRARY_PATH=$PWD/.gpu VK_DRIVER_FILES=$PWD/.gpu/nvidia_egl_icd.json VK_ICD_FILENAMES=$PWD/.gpu/nvidia_egl_icd.json
export RUST_BACKTRACE=0 WGTRAIN_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
tar -C .bundle -xJf .bundle/bin.tar.xz
B=$PWD/.bundle/bin
# The test executables were compiled with this checkout's paths (fixtures, the wgtrain binary).
mkdir -p target/release && cp $B/wgtrain target/release/wgtrain
[ "$PWD" = /work/main ] || { mkdir -p /work && rm -rf /work/main && ln -s "$PWD" /work/main; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
$B/wgtrain devices
$B/profile_step --batch 128 --steps 400
$B/profile_step --noop --steps 2000   # the host share of wgtrain + wgpu-core alone (nothing runs)
$B/profile_step --batch 64 --steps 400
$B/conv_tiles --batch 128 --reps 20
WGTRAIN_PIPELINE_CACHE=off $B/first_step_ready --lazy; WGTRAIN_PIPELINE_CACHE=off $B/first_step_ready --up-front
WGTRAIN_PIPELINE_CACHE=off $B/first_step_ready; $B/first_step_ready; $B/first_step_ready   # deferred: cold, cache filled, cached
$B/population_bench --backend gpu --steps 50
time $B/wgtrain train --data .mnist --backend gpu --epochs 1 --batch-size 64 --lr 0.05 --momentum 0.9
time $B/wgtrain train --data .mnist --backend gpu --epochs 3 --batch-size 128 --lr 0.05 --momentum 0.9
python3 scripts/pytorch_epoch.py .mnist --device cuda --epochs 3 --batch-size 128 --lr 0.05 --momentum 0.9
python3 scripts/pytorch_epoch.py .mnist --device cuda --epochs 3 --batch-size 128 --lr 0.05 --momentum 0.9 --no-tf32
python3 scripts/pytorch_epoch.py .mnist --device cuda --epochs 1 --batch-size 64 --lr 0.05 --momentum 0.9
for t in gpu_kernels gpu_tiles gpu_guards gpu_parity gpu_trajectory gpu_errors gpu_recipe compare_backends train_loop; do
    $B/$t 2>&1 | grep -E "test result|FAILED|panicked|failed"
done
$B/train_step --bench 2>&1 | grep -vE "^\s*$|Warming|Collecting|Analyzing|outlier|^  [0-9]+ \("
WGTRAIN_BENCH_BATCH=128 WGTRAIN_BENCH_ADAPTER=nvidia $B/kernels --bench 2>&1 | grep -E "time:|thrpt:|^kernels"
