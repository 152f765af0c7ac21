#!/usr/bin/env bash
# The library as other Burn projects use it (issue 19), checked in CI:
#  1. `mirrorburn = { default-features = false }` compiles (also with the wgpu backend) and its
#     dependency tree holds none of the command-line program's crates;
#  2. its documentation builds without a warning (missing docs and broken links are errors);
#  3. `cargo package` packs it, under crates.io's 10 MiB limit, and the packed sources compile
#     on their own (checked with `cargo check --release`, sharing this repository's target directory,
#     rather than `cargo package`'s own debug build of every dependency).
# Checks use the release profile so that CI's later `cargo clippy --release --features wgpu,cuda`
# reuses the wgpu crates checked here.
# Usage: scripts/check_library.sh [--skip-wgpu]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "-- cargo check --no-default-features --lib"
cargo check --release --no-default-features --lib
if [ "${1:-}" != "--skip-wgpu" ]; then
    echo "-- cargo check --no-default-features --features wgpu --lib"
    cargo check --release --no-default-features --features wgpu --lib
fi

echo "-- the lean library's dependencies"
# Crates only the command-line program needs (`cli`) and burn-train (`learner`).
cli_only="anyhow clap csv dejavu flate2 indicatif md-5 plotters signal-hook serde_ignored tar ureq burn-train ratatui"
tree=$(cargo tree --no-default-features -e normal --prefix none | sed 's/ v[0-9].*//' | sort -u)
for crate in $cli_only; do
    if grep -qx "$crate" <<<"$tree"; then
        echo "error: \`$crate\` is in the dependency tree of the lean library" \
            "(mirrorburn with default-features = false); put it behind the \`cli\` feature" >&2
        cargo tree --no-default-features -e normal -i "$crate" >&2
        exit 1
    fi
done
direct=$(cargo tree --no-default-features -e normal --depth 1 --prefix none | tail -n +2 \
    | sed 's/ v[0-9].*//' | sort | tr '\n' ' ')
# burn, serde and thiserror; gemm, rand, rayon and regex are in Burn's own tree.
expected="burn gemm rand rayon regex serde thiserror "
if [ "$direct" != "$expected" ]; then
    echo "error: the lean library depends directly on: $direct(expected: $expected)" >&2
    exit 1
fi
echo "lean library: direct dependencies $direct; none of: $cli_only"

echo "-- cargo doc --no-deps --no-default-features (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --no-default-features
echo "-- cargo doc --no-deps --no-default-features --features learner (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --no-default-features --features learner

echo "-- cargo package"
cargo package --no-verify --allow-dirty
crate=$(ls -t target/package/mirrorburn-*.crate | head -1)
size=$(stat -c %s "$crate")
echo "packed: $crate, $size bytes ($(tar tzf "$crate" | wc -l) files)"
if [ "$size" -gt $((10 * 1024 * 1024)) ]; then
    echo "error: $crate is over crates.io's 10 MiB limit" >&2
    exit 1
fi
if tar tzf "$crate" | grep -E '^mirrorburn-[^/]*/(artifacts|data|tests|scripts|target)/'; then
    echo "error: $crate holds files that must stay out (above); fix \`include\` in Cargo.toml" >&2
    exit 1
fi
unpacked="${crate%.crate}"
rm -rf "$unpacked" && mkdir -p "$(dirname "$unpacked")"
tar xzf "$crate" -C "$(dirname "$unpacked")"
CARGO_TARGET_DIR="$PWD/target" cargo check --release --manifest-path "$unpacked/Cargo.toml" --locked --lib --bins --examples
echo "library checks passed"
