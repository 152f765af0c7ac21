#!/usr/bin/env bash
# Regenerates the committed student-teacher reference outputs (artifacts/reference/toy/) from
# every configs/toy-*.toml with the release binary (runs of one config use every core).
# Wall time on the project's 2-core machine: see the table at the end of this header.
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
