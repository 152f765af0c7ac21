#!/usr/bin/env bash
# Regenerates the committed student-teacher reference outputs (artifacts/reference/toy/) from
# every configs/toy-*.toml with the release binary (runs of one config use every core).
# Wall times measured on the project's 2-core machine (2026-11-30, while other jobs shared the
# cores, so upper bounds): toy-2layer 1798 s, toy-2layer-p3-stability 215 s,
# toy-2layer-hyperbolic-eta0.01 91 s, toy-2layer-lambda-hyperbolic 36 s, toy-2layer-lambda-p3 36 s,
# toy-2layer-lambda-hyperbolic-100k 417 s, toy-3layer-lambda-hyperbolic 125 s. Not yet measured:
# toy-2layer-flow-limit and toy-2layer-lambda-hyperbolic-1m (hours), the other 3-layer configs.
#   scripts/regenerate_toy_references.sh [config...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(configs/toy-*.toml)
for config in "${configs[@]}"; do
    name=$(basename "$config" .toml)
    echo "== $name"
    start=$(date +%s)
    ./target/release/mirrorburn toy --config "$config" --out "artifacts/reference/toy/$name"
    echo "== $name: $(( $(date +%s) - start )) s"
done
