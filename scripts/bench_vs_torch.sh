#!/usr/bin/env bash
# mirrorburn's training step against PyTorch's, in one session on the same machine, threads and
# device: `mirrorburn bench --parts step` (GD row: the SGD-equivalent step) and
# scripts/torch_reference.py on the same bias-free VGG-16, batch and widths, then the convolution
# alone per VGG-16 layer shape (`mirrorburn bench --parts conv` and `torch_reference.py
# --conv-layers`; flex only), and the step per op (`--parts ops` and `--ops`: each conv block
# with its ReLU and pool, the classifier with the loss). Prints the ratios mirrorburn / PyTorch
# last (> 1: mirrorburn is faster): per layer shape and part, per op, per width for the 13
# layers, and for the whole step.
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
parts=step,ops conv_flag=""
[ "$backend" = flex ] && parts=step,conv,ops conv_flag=--conv-layers
ours=$("$binary" bench --backend "$backend" --parts "$parts" --step-widths "$widths" \
    --batch-size "$batch" --repeats "$repeats" | tee >(cat >&2))
theirs=$("${PYTHON:-python3}" scripts/torch_reference.py --width-divisors "$widths" --batch-size "$batch" \
    --repeats "$repeats" --threads "$threads" --device "$torch_device" $conv_flag --ops | tee >(cat >&2)) || theirs=""
if [ -n "$conv_flag" ] && [ -n "$theirs" ]; then
    echo
    echo "Convolution per layer shape, ms (ratio = PyTorch ms / mirrorburn ms; > 1: mirrorburn is faster)"
    echo
    echo "| width | layer | n | ours fwd | torch fwd | ratio | ours dgrad | torch dgrad | ratio | ours wgrad | torch wgrad | ratio |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    # Join our rows (under a "(flex, width/k" or "(flex, full width" heading) with PyTorch's.
    awk -F'|' '
        FNR == NR { if ($2 ~ /torch 1\//) { w = $2; gsub(/ |torch/, "", w); key = w " " $3; gsub(/ +/, " ", key);
                    t[key] = $5 "|" $6 "|" $7 } next }
        /layer shape \(flex, full width/ { width = "1/1" }
        /layer shape \(flex, width\// { match($0, /width\/[0-9]+/); width = "1/" substr($0, RSTART + 6, RLENGTH - 6) }
        $2 ~ /^ [0-9]+-[0-9]+@[0-9]+ $/ {
            key = width " " $2; gsub(/ +/, " ", key)
            if (!(key in t)) next
            split(t[key], p, "|"); n = $3 + 0; first = ($2 ~ /^ 3-/)
            printf "| %s | %s | %d |", width, $2, n
            for (i = 0; i < 3; i++) {
                mine = $(4 + 3 * i) + 0; torch = p[i + 1] + 0
                printf " %.2f | %.2f | %.2f |", mine, torch, torch / mine
                if (!(i == 1 && first)) { sm[width] += n * mine; st[width] += n * torch }
            }
            print ""
            order[width] = 1
        }
        END { for (w in order) printf "| %s | **all 13 layers, all three parts** | 13 | %.1f | %.1f | %.2f |\n", w, sm[w], st[w], st[w] / sm[w] }
    ' <(echo "$theirs") <(echo "$ours")
fi
if [ -n "$theirs" ]; then
    echo
    echo "Training step per op, ms (ratio = PyTorch ms / mirrorburn ms; cores = CPU time / wall time)"
    echo
    echo "| width | op | ours fwd | torch fwd | ratio | ours bwd | torch bwd | ratio | cores ours | cores torch |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    # Join our rows (under a "per op (<backend>, full width" or "width/k" heading) with PyTorch's.
    awk -F'|' '
        function trim(v) { gsub(/^ +| +$/, "", v); return v }
        FNR == NR { if ($2 ~ /torch ops 1\//) { w = trim($2); sub(/torch ops /, "", w);
                    t[w "|" trim($3)] = $4 "|" $5 "|" $7 } next }
        /per op \(.*full width/ { width = "1/1" }
        /per op \(.*width\// { match($0, /width\/[0-9]+/); width = "1/" substr($0, RSTART + 6, RLENGTH - 6) }
        /per op \(/ { inops = 1 }
        inops && $2 ~ /^ (block|linear)/ {
            key = width "|" trim($2)
            if (!(key in t)) next
            split(t[key], p, "|"); f = $3 + 0; b = $4 + 0
            printf "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", width, trim($2), f, p[1], p[1] / f, b, p[2], p[2] / b, $6, p[3]
            so[width] += f + b; sp[width] += p[1] + p[2]; order[width] = 1
        }
        END { for (w in order) printf "| %s | **blocks + classifier** | | | | %.1f | %.1f | %.2f | | |\n", w, so[w], sp[w], sp[w] / so[w] }
    ' <(echo "$theirs") <(echo "$ours")
fi
echo
echo "| width | mirrorburn $backend img/s (gd step) | PyTorch $torch_device img/s | ratio |"
echo "|---|---:|---:|---:|"
IFS=, read -ra list <<< "$widths"
for k in "${list[@]}"; do
    label=$([ "$k" = 1 ] && echo full || echo "1/$k")
    mine=$(awk -F'|' -v w=" $label " '$2 == w && $4 ~ /gd primal/ {gsub(/ /, "", $6); print $6}' <<< "$ours")
    torch=$(awk -v w="1/$k" '$1 == "torch" && $4 == w {print $7}' <<< "$theirs")
    if [ -n "$torch" ] && [ -n "$mine" ]; then
        ratio=$(awk -v a="$mine" -v b="$torch" 'BEGIN {printf "%.2f", a / b}')
    else
        torch="-" ratio="- (PyTorch not run)"
    fi
    echo "| $label | $mine | $torch | $ratio |"
done
