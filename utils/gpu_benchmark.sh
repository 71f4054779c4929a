#!/usr/bin/env bash
# The whole GPU check of issue 17 (eager vs compile: true, DinoSR Base, bf16) in one go:
#
#     utils/gpu_benchmark.sh [OUTPUT_DIR]          # default: exp/gpu_benchmark
#
# 1. benchmark, 8 x 15 s: eager and compiled, s of audio per second, MFU, peak memory, the DinoSR
#    overhead and the codebook/EMA fractions (model + codebook sections, HF reference included);
# 2. benchmark, 16 x 15 s: the same for the full step (codebook section);
# 3. compare_compiled, 8 x 15 s: the 20-step numerical comparison (fp32 eager / bf16 eager /
#    bf16 compiled, fixed batch and masks, no dropout) and the profiler's top kernels of the
#    eager and the compiled full step (3 steps each).
#
# Budget: under 8 minutes on one H100/H200 (inductor compiles each graph once per shape; the
# inductor cache under TORCHINDUCTOR_CACHE_DIR makes later steps reuse it). Each step has its own
# time limit, so a hang cannot eat the budget; a step that fails is reported and the next runs.
# COMPILE_MODE=reduce-overhead (CUDA graphs) or max-autotune-no-cudagraphs tries another mode.
# Results: OUTPUT_DIR/*.md (tables, as printed), *.json (figures), *.log (progress).
set -u -o pipefail

output_dir=${1:-exp/gpu_benchmark}
compile_mode=${COMPILE_MODE:-}
python=${PYTHON:-python3}
mkdir -p "${output_dir}"
export PYTHONPATH="${PYTHONPATH:-}:$(pwd)"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-${output_dir}/inductor_cache}"
mode_option=()
[ -n "${compile_mode}" ] && mode_option=(--compile_mode "${compile_mode}")

failed=0
run_step() {  # NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=${SECONDS}
    echo "== ${name} (limit ${limit} s): $*" >&2
    local status=0
    timeout "${limit}" "$@" > "${output_dir}/${name}.md" 2> "${output_dir}/${name}.log" || status=$?
    if [ "${status}" -ne 0 ]; then
        echo "== ${name} FAILED (exit status ${status}; 124 = time limit); see ${output_dir}/${name}.log" >&2
        failed=1
    fi
    echo "== ${name} done in $((SECONDS - start)) s" >&2
}

"${python}" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" \
    || exit 1

run_step bench_8x15 210 "${python}" -m dinosr_espnet.bin.benchmark --device cuda --dtype bf16 \
    --batch_size 8 --seconds 15 --warmup 2 --repeats 5 --sections model,codebook --compile "${mode_option[@]}" \
    --output_json "${output_dir}/bench_8x15.json"
run_step bench_16x15 100 "${python}" -m dinosr_espnet.bin.benchmark --device cuda --dtype bf16 \
    --batch_size 16 --seconds 15 --warmup 2 --repeats 5 --sections codebook --compile "${mode_option[@]}" \
    --output_json "${output_dir}/bench_16x15.json"
run_step numerics_and_profile 160 "${python}" -m dinosr_espnet.bin.compare_compiled --device cuda --dtype bf16 \
    --batch_size 8 --seconds 15 --steps 20 --profile_steps 3 "${mode_option[@]}" \
    --output_json "${output_dir}/numerics_and_profile.json"

grep -h -E "audio_seconds_per_second|_mfu|peak_memory|compiled_speedup|overhead_ratio \|" \
    "${output_dir}"/bench_*.md >&2 || true
grep -h "within bf16 noise" "${output_dir}/numerics_and_profile.md" >&2 || true
exit ${failed}
