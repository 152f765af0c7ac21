#!/usr/bin/env bash
# The acceptance test of a machine with an NVIDIA GPU (no Rust toolchain, no internet needed there).
#
# Here (with Rust):   scripts/gpu_check.sh pack [--binary PATH] [--out FILE] [--level 0-9]
#   builds a stripped release binary with --features wgpu,cuda (offline: scripts/cuda_offline.sh
#   first), and packs it with a 2,000-image CIFAR-10 subset, the PyTorch reference and this script
#   into one xz archive (default gpu_check.tar.xz; it and the repository must stay under 64 MiB,
#   the most that travels to the GPU machine).
# There (unpacked):   bash gpu_check.sh run [--backends cuda,wgpu] [--repeats N] [--out DIR] [--short]
#                         [--parts a,b,c,d,e] [--train-seconds S]
#   (a) the mirror step alone (every potential x scaling x step form, relative updates 1e-7 to
#       1e-2) on each GPU backend against the f64 host step per element at f32 precision, and one
#       training step of every potential x step form against flex, element by element, within
#       bounds that admit TF32 convolutions (`bench --parts step-accuracy,agreement` exits
#       non-zero outside them); (b) full-width and width/8 training-step img/s on each backend,
#       batch 100, device reads per step (must be 0), and the data pipeline's img/s; (c) PyTorch
#       on the same GPU: the same bias-free VGG-16 step with its defaults (cuDNN, TF32
#       convolutions) plus cudnn.benchmark ("tuned"), and with bf16 autocast + channels_last,
#       our img/s over theirs; (d) K = 1, 2, 4, 8 training processes on one GPU, aggregate img/s
#       over a common window; (e) 90 s of training (the loss falls), SIGTERM, two `--resume`s
#       from the same checkpoint agree bit for bit, and the best checkpoint evaluates on flex to
#       the accuracy recorded on the GPU within 0.5 points (TF32 flips a few near-ties); (f)
#       cubecl's autotune results persisted in OUT/cubecl (through ./cubecl.toml), reused by (d).
#   Parts run in the order a, b, c, e, d (the checks before the scaling measurement). Every part
#   writes under OUT as it finishes and appends its section to OUT/report.md; the script exits
#   non-zero if any part failed. On an H200 with cold caches the parts took a 3.0 min (both
#   backends), b 2.7, c 0.7, d 2.2 (8 s windows), e ~2.5 (artifacts/bench/gpu-check-h200.md):
#   ~11 minutes, over the 8 we aim for; run `--parts` in two calls where a call is limited. A
#   fresh machine's first cuda training step compiles and tunes every kernel (~1 minute).
#   `--backends flex,wgpu --short` runs every part that needs no NVIDIA GPU (CI does, on lavapipe), with small sizes.
#
# Keeping the autotune results between runs: cubecl reads `cubecl.toml` from the working
# directory; `[environment] path = { directory = "/some/dir" }` keeps its database (tuned kernels
# per device and shape) in /some/dir/default.db, reused by every later process with that file.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}
[ $# -gt 0 ] && shift

pack() {
    set -e
    local binary="" out=gpu_check.tar.xz level=9
    while [ $# -gt 0 ]; do
        case "$1" in
            --binary) binary=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            --level) level=$2; shift 2 ;;
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
    tar -C "$stage" -cf - gpu_check | xz "-$level" -T2 > "$out"
    rm -rf "$stage"
    local size tracked
    size=$(stat -c %s "$out")
    tracked=$(cd "$root" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
    echo "packed $out: $((size / 1048576)) MiB ($size bytes); tracked repository: $((tracked / 1048576)) MiB"
    if [ $((size + tracked)) -ge $((64 * 1048576)) ]; then
        echo "error: the pack and the repository together are over 64 MiB" >&2
        exit 1
    fi
}

run() {
    local backends=cuda,wgpu out=gpu_check_out repeats=3 short=0 parts=a,b,c,d,e train_seconds=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --parts) parts=$2; shift 2 ;;
            --train-seconds) train_seconds=$2; shift 2 ;;
            --backends) backends=$2; shift 2 ;;
            --repeats) repeats=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            --short) short=1; shift ;;
            *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
    done
    cd "$here"
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    export CUBECL_AUTOTUNE_LEVEL=${CUBECL_AUTOTUNE_LEVEL:-minimal}
    # (f) the autotune database of every process below, in the output directory.
    mkdir -p "$out/cubecl"
    printf '[environment]\npath = { directory = "%s" }\n' "$out/cubecl" > cubecl.toml
    local bin=./mirrorburn report="$out/report.md" status="$out/status.txt"
    : > "$status"
    IFS=, read -ra list <<< "$backends"
    local gpus=() b
    for b in "${list[@]}"; do [ "$b" != flex ] && gpus+=("$b"); done
    [ ${#gpus[@]} -gt 0 ] || { echo "--backends names no GPU backend" >&2; exit 2; }
    local first=${gpus[0]}
    # Sizes: the real check, or CI's short one on a software GPU.
    local widths=1,8 batch=100 agree_width=8 ks="1 2 4 8" window=6 lead=15 train_s=90 epochs_cap=1000
    local check_parts=step-accuracy,agreement
    if [ "$short" = 1 ]; then
        widths=16; batch=20; agree_width=16; ks="1 2"; window=3; lead=15; train_s=20; repeats=1
        # CI runs step-accuracy in the wgpu test suite just before; here only the agreement.
        check_parts=agreement
    fi
    [ -n "$train_seconds" ] && train_s=$train_seconds
    want() { [[ ",$parts," == *",$1,"* ]]; }
    {
        echo "# gpu_check ($(date -u +%FT%TZ); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo 'no nvidia-smi'); backends ${gpus[*]}; CUBECL_AUTOTUNE_LEVEL=$CUBECL_AUTOTUNE_LEVEL)"
        echo
    } > "$report"
    verdict() { # part, PASS|FAIL, note
        echo "$1 $2 $3" >> "$status"
        echo "**($1) $2**: $3" >> "$report"; echo >> "$report"
        echo "== ($1) $2: $3"
    }

    if want a; then
    echo "== (a) the mirror step vs the f64 host step; one training step vs flex, element by element"
    echo "## (a) the mirror step vs f64; one training step vs flex" >> "$report"; echo >> "$report"
    for b in "${gpus[@]}"; do
        timeout 240 "$bin" bench --backend "$b" --parts "$check_parts" --step-widths "$agree_width" \
            --batch-size "$batch" --out "$out/a_agreement_$b.md" > "$out/a_agreement_$b.log" 2>&1
        local rc=$?
        [ -f "$out/a_agreement_$b.md" ] && cat "$out/a_agreement_$b.md" >> "$report"
        if [ $rc -eq 0 ]; then verdict a PASS "$b within the bounds"
        else verdict a FAIL "$b: exit $rc, see a_agreement_$b.log: $(tail -n 3 "$out/a_agreement_$b.log" | tr '\n' ' ')"; fi
    done

    fi
    if want b; then
    echo "== (b) training step img/s, reads per step, data pipeline"
    echo "## (b) training step and data pipeline" >> "$report"; echo >> "$report"
    for b in "${list[@]}"; do
        [ "$b" = flex ] && continue # flex's step is `bench --parts step` on a CPU machine
        timeout 240 "$bin" bench --backend "$b" --parts step,data --step-widths "$widths" \
            --batch-size "$batch" --repeats "$repeats" --out "$out/b_step_$b.md" > "$out/b_step_$b.log" 2>&1
        local rc=$?
        [ -f "$out/b_step_$b.md" ] && cat "$out/b_step_$b.md" >> "$report"
        # reads/step is the last column of the step table's rows.
        local reading
        reading=$(awk -F'|' '/^\| (full|1\/[0-9]+) \|/ {gsub(/ /, "", $10); print $10}' "$out/b_step_$b.md" 2>/dev/null | sort -u | tr '\n' ' ')
        if [ $rc -ne 0 ]; then verdict b FAIL "$b: exit $rc, see b_step_$b.log"
        elif [ "$reading" != "0 " ]; then verdict b FAIL "$b: device reads per step: $reading(must be 0)"
        else verdict b PASS "$b: 0 device reads per step"; fi
    done
    {
        echo "autotune database after (b): $(ls -l "$out/cubecl" 2>/dev/null | awk 'NR > 1 {print $NF, $5 " bytes"}' | tr '\n' ' ')"
        echo
    } >> "$report"

    fi
    if want c; then
    echo "== (c) PyTorch on the same GPU"
    echo "## (c) PyTorch on the same GPU, batch $batch" >> "$report"; echo >> "$report"
    if [ "$first" = cuda ] && python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        local precision
        for precision in tuned bf16; do
            timeout 150 python3 torch_reference.py --device cuda --mode "$precision" \
                --width-divisors "$widths" --batch-size "$batch" --repeats 20 > "$out/c_torch_$precision.txt" 2>&1
        done
        {
            echo "| engine | width | images/s | ours (cuda, GD primal) over it |"
            echo "|---|---|---:|---:|"
            local line width ours theirs
            for precision in tuned bf16; do
                while read -r line; do
                    width=$(awk '{print $4}' <<< "$line"); theirs=$(awk '{print $7}' <<< "$line")
                    local label=full; [ "$width" != 1/1 ] && label=$width
                    ours=$(awk -F'|' -v w="$label" '$2 ~ " "w" " && $4 ~ /^ gd primal/ {gsub(/ /, "", $6); print $6}' "$out/b_step_cuda.md" 2>/dev/null | head -1)
                    echo "| PyTorch $precision | $label | $theirs | $(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (a == "" || b == 0) print "-"; else printf "%.2f", a / b }') |"
                done < <(grep '^torch' "$out/c_torch_$precision.txt")
            done
        } > "$out/c_torch.md"
        cat "$out/c_torch.md" >> "$report"
        if grep -q '^| PyTorch' "$out/c_torch.md"; then verdict c PASS "measured (ratios above)"
        else verdict c FAIL "PyTorch did not run: see c_torch_*.txt"; fi
    else
        verdict c SKIP "no CUDA PyTorch here (the NVIDIA machines have it)"
    fi

    fi
    if want e; then
    echo "== (e) ${train_s} s of training on $first, SIGTERM, resume, evaluate on flex"
    echo "## (e) training on $first: SIGTERM, resume, flex evaluation" >> "$report"; echo >> "$report"
    local run_dir="$out/e_run" e_note="" e_ok=1
    local sizes=(--set epochs=$epochs_cap --set data.n_train=2000 --set data.n_val=1000)
    [ "$short" = 1 ] && sizes=(--set epochs=$epochs_cap --set data.n_train=200 --set data.n_val=100 --set batch_size=20 --set model.width_divisor=16)
    timeout -s TERM "$train_s" "$bin" train --config configs/quick-gd.toml --backend "$first" \
        --data-dir cifar "${sizes[@]}" --out "$run_dir" > "$out/e_train.log" 2>&1
    local facts
    facts=$(python3 - "$run_dir" <<'PY'
import csv, json, sys
run = sys.argv[1]
summary = json.load(open(f"{run}/summary.json"))
rows = list(csv.DictReader(open(f"{run}/metrics.csv")))
losses = [float(r["train_loss"]) for r in rows]
print(summary["status"], summary["epochs_completed"], len(rows), losses[0] if losses else "nan", losses[-1] if losses else "nan")
PY
)
    read -r e_status e_epochs e_rows e_first e_last <<< "${facts:-none 0 0 nan nan}"
    echo "interrupted run: status $e_status after $e_epochs epochs; train loss $e_first (epoch 1) -> $e_last (epoch $e_rows)" >> "$report"; echo >> "$report"
    [ "$e_status" = interrupted ] || { e_ok=0; e_note+="status $e_status, not interrupted; "; }
    awk -v a="$e_first" -v b="$e_last" -v n="$e_rows" 'BEGIN { exit !(n >= 2 && b < a) }' || { e_ok=0; e_note+="the loss did not fall; "; }
    local next=$((e_epochs + 1)) copy
    for copy in e_resume1 e_resume2; do
        rm -rf "$out/$copy"; cp -r "$run_dir" "$out/$copy"
        timeout 120 "$bin" train --config configs/quick-gd.toml --backend "$first" --data-dir cifar \
            "${sizes[@]}" --set epochs=$next --resume --out "$out/$copy" > "$out/$copy.log" 2>&1 \
            || { e_ok=0; e_note+="$copy failed (see $copy.log); "; }
    done
    if cmp -s <(tail -n 1 "$out/e_resume1/metrics.csv" | cut -d, -f1-5) <(tail -n 1 "$out/e_resume2/metrics.csv" | cut -d, -f1-5) \
        && cmp -s "$(ls "$out"/e_resume1/checkpoints/model-epoch*.bpk | tail -1)" "$(ls "$out"/e_resume2/checkpoints/model-epoch*.bpk | tail -1)"; then
        echo "two resumes from the same checkpoint: identical epoch-$next metrics and weights" >> "$report"
    else
        e_ok=0; e_note+="the two resumes differ; "
    fi
    echo >> "$report"
    timeout 180 "$bin" prune --run "$out/e_resume1" --checkpoint best --sparsities 0 --backend flex \
        --data-dir cifar > "$out/e_flex_eval.log" 2>&1 || { e_ok=0; e_note+="flex evaluation failed; "; }
    local accs
    accs=$(python3 - "$out/e_resume1" <<'PY'
import csv, json, sys
run = sys.argv[1]
best = json.load(open(f"{run}/summary.json"))["best_val_acc"]
flex = [float(r["val_acc"]) for r in csv.DictReader(open(f"{run}/pruning.csv")) if float(r["sparsity"]) == 0.0]
print(best, flex[0] if flex else "nan")
PY
)
    read -r acc_gpu acc_flex <<< "${accs:-nan nan}"
    echo "best checkpoint: validation accuracy $acc_gpu recorded on $first, $acc_flex evaluated on flex" >> "$report"; echo >> "$report"
    # Within 0.5 points: a GPU's TF32 convolutions (logits ~1e-3 of their peak off flex's) can
    # flip a few near-ties among 1,000 images.
    awk -v a="$acc_gpu" -v b="$acc_flex" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.0051) }' \
        || { e_ok=0; e_note+="flex accuracy $acc_flex differs from $acc_gpu; "; }
    if [ $e_ok = 1 ]; then verdict e PASS "loss fell, resumes agree bit for bit, flex evaluates to the recorded accuracy"
    else verdict e FAIL "$e_note"; fi
    fi

    if want d; then
    echo "== (d) K training processes on one GPU"
    echo "## (d) K processes on one $first GPU, common ${window} s window" >> "$report"; echo >> "$report"
    {
        echo "| K | aggregate images/s | per process | late arrivals |"
        echo "|---:|---:|---|---:|"
    } > "$out/d_processes.md"
    local k d_ok=1 dwidth=${widths##*,}
    for k in $ks; do
        local start_at pids=() i
        start_at=$(python3 -c "import time; print(time.time() + $lead)")
        for i in $(seq 1 "$k"); do
            timeout $((lead + window + 60)) "$bin" bench --backend "$first" --parts window \
                --step-widths "$dwidth" --batch-size "$batch" --start-at "$start_at" --seconds "$window" \
                --out "$out/d_k${k}_$i.md" > "$out/d_k${k}_$i.log" 2>&1 &
            pids+=($!)
        done
        local failed=0 pid
        for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
        local rates late
        rates=$(cat "$out"/d_k"${k}"_*.md 2>/dev/null | awk -F'|' '/^\| [a-z]+ \| 1\// {gsub(/ /, "", $7); print $7}')
        late=$(grep -l "late" "$out"/d_k"${k}"_*.md 2>/dev/null | wc -l)
        if [ $failed -ne 0 ] || [ "$(wc -w <<< "$rates")" -ne "$k" ]; then d_ok=0; fi
        echo "| $k | $(awk '{s += $1} END {printf "%.1f", s}' <<< "$rates") | $(tr '\n' ' ' <<< "$rates") | $late |" >> "$out/d_processes.md"
    done
    cat "$out/d_processes.md" >> "$report"; echo >> "$report"
    if [ $d_ok = 1 ]; then verdict d PASS "every process measured (width 1/${dwidth#1/}, batch $batch)"
    else verdict d FAIL "a process failed: see d_k*.log"; fi
    {
        echo "autotune database after (d): $(ls -l "$out/cubecl" 2>/dev/null | awk 'NR > 1 {print $NF, $5 " bytes"}' | tr '\n' ' ')"
        echo
    } >> "$report"
    if ls "$out"/cubecl/*.db > /dev/null 2>&1; then verdict f PASS "autotune results persisted in cubecl/ and shared by (d)"
    else verdict f FAIL "no autotune database under $out/cubecl"; fi

    fi

    if [ -f "$out/c_torch.md" ]; then
        { echo "## ours over PyTorch (from (c))"; echo; cat "$out/c_torch.md"; echo; } >> "$report"
    fi
    cat "$status"
    [ -f "$out/c_torch.md" ] && cat "$out/c_torch.md"
    if grep -q ' FAIL ' "$status"; then
        echo "gpu_check: FAILED (see $report)" >&2
        return 1
    fi
    echo "gpu_check: passed ($report)"
}

case "$mode" in
    pack) pack "$@" ;;
    run) run "$@" ;;
    *) echo "usage: $0 pack [--binary PATH] [--out FILE] | run [--backends cuda,wgpu] [--repeats N] [--out DIR] [--short]" >&2; exit 2 ;;
esac
