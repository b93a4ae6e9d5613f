#!/usr/bin/env bash
# Installs the Debian 12 packages resilink builds and tests with (needs root).
# Skips apt entirely when everything is already installed.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang-14 libclang-rt-14-dev   # toolchains; clang for ASan/UBSan
  # libclang-rt-14-dev also holds libFuzzer for clang 14 (libclang_rt.fuzzer*.a,
  # which -fsanitize=fuzzer links, and FuzzedDataProvider.h): tools/fuzz.sh needs
  # nothing more. (libfuzzer-14-dev only adds libFuzzer.a for -lFuzzer links.)
  libasio-dev libcli11-dev libspdlog-dev libfmt-dev   # server shell, command line, logs
  libgtest-dev                                        # tests
  libbenchmark-dev                                    # core micro-benchmarks (resilink_core_bench)
  nlohmann-json3-dev                                  # the soak's and the bench's JSON
  gcc-xtensa-lx106 picolibc-xtensa-lx106-elf          # core for ESP8266
  gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib    # core for Cortex-M0+
  python3 iproute2                                    # interop harness
  mosquitto                                           # bench: the broker of the MQTT qos1 round trip
  # (the bench speaks MQTT 3.1.1 itself, so libmosquitto-dev is not needed)
)
if [ "${1:-}" = "--demo" ]; then
  # `resilink` links the bench, which builds the core micro-benchmarks.
  packages=(cmake ninja-build g++ libasio-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev
            nlohmann-json3-dev libbenchmark-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
