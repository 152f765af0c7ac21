#!/usr/bin/env bash
# Regenerates the committed student-teacher reference outputs (artifacts/reference/toy/) from
# every configs/toy-*.toml with the release binary. Takes about an hour on 2 cores.
#   scripts/regenerate_toy_references.sh [config...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(configs/toy-*.toml)
for config in "${configs[@]}"; do
    name=$(basename "$config" .toml)
    echo "== $name"
    ./target/release/mirrorburn toy --config "$config" --out "artifacts/reference/toy/$name"
done
