#!/usr/bin/env bash
# The main job: a resilink server and 4 clients exchanging qos messages on
# loopback. Installs what is missing, builds, runs. Extra arguments go to the
# demo (e.g. --duration 30).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --demo
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DRESILINK_BUILD_TESTS=OFF > /dev/null
cmake --build build/demo --target main_demo
exec build/demo/examples/main_demo "$@"
