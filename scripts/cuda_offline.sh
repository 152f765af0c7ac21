#!/usr/bin/env bash
# Lets `--features cuda` build without internet: burn 0.22.1's cuda backend links an LLVM bundle
# (tracel-llvm 23.1.0-4) that its build script downloads. This installs Debian's LLVM 22 and
# presents it where the build script looks for the bundle. Run as root (apt-get); idempotent.
# With internet, skip this: `cargo build --release --features cuda` fetches the real bundle.
# Risk: LLVM 22 stands in for 23; only a run on an NVIDIA GPU (scripts/gpu_check.sh) clears it.
#   scripts/cuda_offline.sh && cargo build --release --features wgpu,cuda
set -euo pipefail
if ! dpkg -s llvm-22-dev libpolly-22-dev libzstd-dev >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        llvm-22-dev libpolly-22-dev libzstd-dev >/dev/null
fi
# The bindings link `-llibz3`; Debian names it libz3.so.
ln -sf /usr/lib/x86_64-linux-gnu/libz3.so /usr/lib/llvm-22/lib/liblibz3.so
bundle=${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4
mkdir -p "$bundle"
for dir in bin lib include; do
    ln -sfn "/usr/lib/llvm-22/$dir" "$bundle/$dir"
done
touch "$bundle/.tracel-llvm-installed"
echo "LLVM 22 presented as $bundle"
