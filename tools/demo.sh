#!/usr/bin/env bash
# The main job: `resilink demo`. A server and 4 clients, each through a fault
# proxy that makes an outage every few seconds, qos traffic both ways for 60 s,
# a live view, the summary line and a timeline picture (resilink-demo.svg).
# Installs what is missing, builds, runs. Extra arguments go to the demo
# (e.g. --duration 30 --clients 8 --seed 3).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --demo
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DRESILINK_BUILD_TESTS=OFF > /dev/null
cmake --build build/demo --target resilink
exec build/demo/apps/resilink demo "$@"
