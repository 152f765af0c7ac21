#!/usr/bin/env bash
# Regenerates the committed student-teacher reference outputs (artifacts/reference/toy/) from
# every configs/toy-*.toml with the release binary (runs of one config use every core).
# Wall times on the project's 2-core machine (2026-11-30). With the hand path of issue 20 (host
# f64 step; every run here shared the cores with one other toy job, so these are upper bounds):
# toy-2layer-flow-limit 1771 s for c = 0.1..0.001 (alone on the cores: 1058 s and 1105 s) plus 2099 s for the c = 0.0003
# runs of GD and hyperbolic, toy-2layer-primal-vs-dual 42 s, toy-2layer-lambda-hyperbolic-1m 365 s,
# toy-3layer 701 s, toy-3layer-primal-vs-dual 1959 s, toy-3layer-lambda-p3 162 s,
# toy-3layer-lambda-hyperbolic-100k 3641 s (paused ~25 min of it) (the 3-layer timings predate the move of the 3-layer
# path to the gemm crate, 1.9x faster per step since). Before it (Burn's optimizer step, ~4x slower per
# 2-layer step): toy-2layer 1798 s, toy-2layer-p3-stability 215 s, toy-2layer-hyperbolic-eta0.01
# 91 s, toy-2layer-lambda-hyperbolic 36 s, toy-2layer-lambda-p3 36 s,
# toy-2layer-lambda-hyperbolic-100k 417 s, toy-3layer-lambda-hyperbolic 125 s.
# Finished runs are kept in <out>/runs/ (not committed), so an interrupted regeneration resumes.
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
