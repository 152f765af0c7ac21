#!/usr/bin/env bash
# The one prepared check for a machine with an NVIDIA GPU, no Rust toolchain and no internet.
#
# Here (with Rust):   scripts/gpu_check.sh pack [--binary PATH] [--out FILE]
#   builds a stripped release binary with --features wgpu,cuda (offline: scripts/cuda_offline.sh
#   first), and packs it with a 2,000-image CIFAR-10 subset, the PyTorch reference and this script
#   into one archive (< 60 MiB; default gpu_check.tar.gz).
# There (unpacked):   bash gpu_check.sh run [--backends cuda,wgpu] [--repeats N] [--out DIR]
#   (a) one training step on every backend (and flex) from the same weights and batch, relative
#       differences; (b) images/s of full-width VGG-16 at batch 100 on each GPU backend, and
#       PyTorch on the same GPU if it is installed; (c) two minutes of training on cuda into a
#       run directory; then one table. Under 8 minutes in all. `--backends flex` runs the CPU
#       parts anywhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}
[ $# -gt 0 ] && shift

pack() {
    local binary="" out=gpu_check.tar.gz
    while [ $# -gt 0 ]; do
        case "$1" in
            --binary) binary=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
    done
    local root
    root=$(cd "$here/.." && pwd)
    if [ -z "$binary" ]; then
        (cd "$root" && cargo build --release --features wgpu,cuda)
        binary=$root/target/release/mirrorburn
    fi
    local data=${MIRRORBURN_DATA:-$root/../shared/data/cifar-10-batches-bin}
    [ -f "$data/data_batch_1.bin" ] || { echo "no CIFAR-10 at $data: set MIRRORBURN_DATA" >&2; exit 1; }
    local stage
    stage=$(mktemp -d)
    mkdir -p "$stage/gpu_check/cifar" "$stage/gpu_check/configs"
    strip -o "$stage/gpu_check/mirrorburn" "$binary"
    # 400 training images per file (2,000 in all) and 1,000 test images; 3,073 bytes per record.
    for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5; do
        head -c $((400 * 3073)) "$data/$f.bin" > "$stage/gpu_check/cifar/$f.bin"
    done
    head -c $((1000 * 3073)) "$data/test_batch.bin" > "$stage/gpu_check/cifar/test_batch.bin"
    cp "$root/configs/quick-gd.toml" "$stage/gpu_check/configs/"
    cp "$here/torch_reference.py" "$here/gpu_check.sh" "$stage/gpu_check/"
    tar -C "$stage" -czf "$out" gpu_check
    rm -rf "$stage"
    local size
    size=$(stat -c %s "$out")
    echo "packed $out: $((size / 1048576)) MiB"
    if [ "$size" -ge $((60 * 1048576)) ]; then
        echo "error: $out is over 60 MiB" >&2
        exit 1
    fi
}

run() {
    local backends=cuda,wgpu out=gpu_check_out repeats=10
    while [ $# -gt 0 ]; do
        case "$1" in
            --backends) backends=$2; shift 2 ;;
            --repeats) repeats=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
    done
    cd "$here"
    mkdir -p "$out"
    export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
    local bin=./mirrorburn summary="$out/summary.md"
    : > "$summary"
    IFS=, read -ra list <<< "$backends"

    echo "== (a) one step on each backend vs flex"
    for b in "${list[@]}"; do
        timeout 180 "$bin" bench --backend "$b" --parts agreement --step-widths 8 --batch-size 100 \
            --out "$out/agreement_$b.md" || echo "| $b | agreement check failed or timed out |" >> "$summary"
        [ -f "$out/agreement_$b.md" ] && grep "^| $b " "$out/agreement_$b.md" >> "$summary" || true
    done

    echo "== (b) full-width VGG-16 training step, batch 100"
    local torch_line=""
    for b in "${list[@]}"; do
        timeout 150 "$bin" bench --backend "$b" --parts step --step-widths 1 --repeats "$repeats" \
            --out "$out/step_$b.md" || echo "step benchmark on $b failed or timed out" >&2
    done
    if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        torch_line=$(timeout 120 python3 torch_reference.py --device cuda --width-divisors 1 --repeats "$repeats" || true)
    elif [[ " ${list[*]} " == *" flex "* ]] && python3 -c "import torch" 2>/dev/null; then
        torch_line=$(timeout 300 python3 torch_reference.py --device cpu --width-divisors 1 --repeats "$repeats" || true)
    fi

    echo "== (c) two minutes of training on ${list[0]}"
    local run_dir="$out/run-${list[0]}"
    timeout -s TERM 120 "$bin" train --config configs/quick-gd.toml --backend "${list[0]}" \
        --data-dir cifar --set epochs=1000 --set data.n_train=2000 --set data.n_val=1000 \
        --out "$run_dir" > "$out/train.log" 2>&1 || true
    tail -n 3 "$out/train.log"

    {
        echo
        echo "# gpu_check summary ($(date -u +%FT%TZ), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo 'no nvidia-smi'))"
        echo
        echo "## (a) one training step vs flex (relative differences: loss, logits, update)"
        echo
        echo "| backend | optimizer | loss | logits (max) | update (worst tensor) |"
        echo "|---|---|---:|---:|---:|"
        cat "$summary"
        echo
        echo "## (b) full-width VGG-16, batch 100"
        echo
        echo "| engine | optimizer | images/s | optimizer share |"
        echo "|---|---|---:|---:|"
        for b in "${list[@]}"; do
            [ -f "$out/step_$b.md" ] && awk -F'|' -v b="$b" '$2 ~ /full/ {print "| mirrorburn " b " |" $4 "|" $6 "|" $9 "|"}' "$out/step_$b.md"
        done
        [ -n "$torch_line" ] && echo "| PyTorch eager fp32 | sgd | $(awk '{print $7}' <<< "$torch_line") | - |" \
            || echo "| PyTorch | not installed (or no GPU for it) | - | - |"
        echo
        echo "## (c) two minutes of training on ${list[0]} ($run_dir)"
        echo
        if [ -f "$run_dir/metrics.csv" ]; then
            echo '```'
            tail -n 3 "$run_dir/metrics.csv"
            echo '```'
        else
            echo "no metrics written: see $out/train.log"
        fi
    } > "$out/report.md"
    cat "$out/report.md"
}

case "$mode" in
    pack) pack "$@" ;;
    run) run "$@" ;;
    *) echo "usage: $0 pack [--binary PATH] [--out FILE] | run [--backends cuda,wgpu] [--out DIR]" >&2; exit 2 ;;
esac
