#!/usr/bin/env bash
# The run command: installs what is needed, builds ringlb and runs the built-in demo on
# tools/demo/ringlb-demo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash tools/setup.sh
cmake -S "$root" -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

config=tools/demo/ringlb-demo.toml
echo
echo "== ringlb simulate: where 10000 synthetic clients land under each policy"
build/tools/ringlb simulate --config "$config" --clients 10000
