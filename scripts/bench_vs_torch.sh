#!/usr/bin/env bash
# mirrorburn's training step against PyTorch's, in one session on the same machine, threads and
# device: `mirrorburn bench --parts step` (GD row: the SGD-equivalent step) and
# scripts/torch_reference.py on the same bias-free VGG-16, batch and widths. Prints the ratio
# mirrorburn / PyTorch last (> 1: mirrorburn is faster).
#   scripts/bench_vs_torch.sh [--backend flex|wgpu|cuda] [--repeats N] [--binary PATH]
# PyTorch runs under $PYTHON (default python3), e.g. PYTHON=venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=flex repeats=10 binary=target/release/mirrorburn widths=1,8 batch=100
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend=$2; shift 2 ;;
        --repeats) repeats=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --widths) widths=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$binary" ] || { echo "no binary at $binary: cargo build --release (or pass --binary)" >&2; exit 1; }
torch_device=cpu
[ "$backend" = flex ] || torch_device=cuda
threads=$(nproc)
ours=$("$binary" bench --backend "$backend" --parts step --step-widths "$widths" \
    --batch-size "$batch" --repeats "$repeats" | tee /dev/stderr)
theirs=$("${PYTHON:-python3}" scripts/torch_reference.py --width-divisors "$widths" --batch-size "$batch" \
    --repeats "$repeats" --threads "$threads" --device "$torch_device" | tee /dev/stderr) || theirs=""
echo
echo "| width | mirrorburn $backend img/s (gd step) | PyTorch $torch_device img/s | ratio |"
echo "|---|---:|---:|---:|"
IFS=, read -ra list <<< "$widths"
for k in "${list[@]}"; do
    label=$([ "$k" = 1 ] && echo full || echo "1/$k")
    mine=$(awk -F'|' -v w=" $label " '$2 == w && $4 ~ /gd primal/ {gsub(/ /, "", $6); print $6}' <<< "$ours")
    torch=$(awk -v w="1/$k" '$4 == w {print $7}' <<< "$theirs")
    if [ -n "$torch" ] && [ -n "$mine" ]; then
        ratio=$(awk -v a="$mine" -v b="$torch" 'BEGIN {printf "%.2f", a / b}')
    else
        torch="-" ratio="- (PyTorch not run)"
    fi
    echo "| $label | $mine | $torch | $ratio |"
done
