#!/usr/bin/env bash
# Builds the sans-I/O core (core/src/*.cpp) for two microcontroller targets and
# checks that it stays fit for them:
#
#   esp8266        xtensa-lx106-elf-g++ with picolibc (C headers only)
#   cortex-m0plus  arm-none-eabi-g++ -mcpu=cortex-m0plus -mthumb, newlib-nano
#
# Steps:
#   1. header guard, by grep: every #include under core/ must be <stdint.h>,
#      <stddef.h>, <string.h> or one of the core's own "resilink/core/..." headers;
#   2. header guard, by the compiler: per target, the -H include tree of every
#      core source and header must reach no other system header directly from a
#      core file, and no C++ library header at all (no <new>, <cstdint>, ...);
#   3. compiles every core/src/*.cpp at -Os, C++17, no exceptions/RTTI, with
#      -Wall -Wextra -Werror and the DEFAULT capacities of config.h (no -D);
#   4. measures .text/.data/.bss per object (the target's `size`, Berkeley
#      format: "text" is code plus read-only data, i.e. what goes to flash), the
#      firmware-like total of a partial link (ld -r --gc-sections), and
#      sizeof(resilink::core::Engine) from a compile-time probe read with nm,
#      and lists the symbols a firmware must supply (failing on any C++ runtime
#      symbol such as operator new or __cxa_*);
#   5. fails if the core's total text on cortex-m0plus exceeds the budget.
# Nothing is linked into an executable and nothing is run.
#
# Usage: tools/mcu-build.sh [--json FILE] [BUILD_DIR]   (default: <repo>/build/mcu)
#   --json FILE  also writes the sizes per target and the verdict as JSON
#                (for `resilink bench`); the printed output stays the same.
# Environment: MCU_TEXT_BUDGET (bytes, default 6144).
# Exit status: 0 when every check passes, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/.." && pwd -P)
CORE=$ROOT/core
INC=$CORE/include
JSON_OUT=
positional=()
while (($#)); do
  case $1 in
    --json) JSON_OUT=${2:?"mcu-build: --json needs a file name"}; shift 2 ;;
    --json=*) JSON_OUT=${1#--json=}; shift ;;
    *) positional+=("$1"); shift ;;
  esac
done
BUILD=${positional[0]:-$ROOT/build/mcu}
BUDGET=${MCU_TEXT_BUDGET:-6144}
BUDGET_TARGET=cortex-m0plus

PICOLIBC_SPECS=/usr/lib/xtensa-lx106-elf/picolibc.specs
PICOLIBC_INC=/usr/lib/xtensa-lx106-elf/include

ALLOWED_SYSTEM_HEADERS=(stdint.h stddef.h string.h)

COMMON_FLAGS=(-std=c++17 -Os -fno-exceptions -fno-rtti -ffunction-sections -fdata-sections
              -Wall -Wextra -Werror -I"$INC")

TARGETS=(esp8266 cortex-m0plus)
# -mlongcalls: a direct CALL0 reaches only about +-512 KiB, and the ESP8266's
# IRAM and flash-mapped code are further apart than that; -mtext-section-literals keeps each function's literal
# pool in its own .text section, so --gc-sections can drop both together.
ESP8266_CXX=(xtensa-lx106-elf-g++ --specs="$PICOLIBC_SPECS" -mlongcalls -mtext-section-literals)
CORTEX_M0PLUS_CXX=(arm-none-eabi-g++ -mcpu=cortex-m0plus -mthumb --specs=nano.specs)

fail=0   # number of problems found so far
problem() {
  echo "mcu-build: FAIL: $*" >&2
  fail=$((fail + 1))
}
rel() { echo "${1#"$ROOT"/}"; }

target_prefix() {
  case $1 in
    esp8266) echo xtensa-lx106-elf ;;
    cortex-m0plus) echo arm-none-eabi ;;
  esac
}
# Sets CXX (array) for target $1.
set_cxx() {
  case $1 in
    esp8266) CXX=("${ESP8266_CXX[@]}") ;;
    cortex-m0plus) CXX=("${CORTEX_M0PLUS_CXX[@]}") ;;
  esac
}

# ----------------------------------------------------------------- tools

missing=()
packages=()
need_tool() {  # tool package
  if ! command -v "$1" >/dev/null 2>&1; then
    missing+=("$1")
    packages+=("$2")
  fi
}
need_tool xtensa-lx106-elf-g++ gcc-xtensa-lx106
for t in size ld nm c++filt; do need_tool "xtensa-lx106-elf-$t" binutils-xtensa-lx106; done
if [[ ! -f $PICOLIBC_SPECS ]]; then
  missing+=("$PICOLIBC_SPECS")
  packages+=(picolibc-xtensa-lx106-elf)
fi
need_tool arm-none-eabi-g++ gcc-arm-none-eabi
for t in size ld nm c++filt; do need_tool "arm-none-eabi-$t" binutils-arm-none-eabi; done
if command -v arm-none-eabi-g++ >/dev/null 2>&1; then
  nano=$(arm-none-eabi-g++ -mcpu=cortex-m0plus -mthumb -print-file-name=nano.specs)
  if [[ $nano != /* || ! -f $nano ]]; then
    missing+=("nano.specs (newlib-nano)")
    packages+=(libstdc++-arm-none-eabi-newlib)
  fi
fi
if ((${#missing[@]})); then
  echo "mcu-build: missing cross tools: ${missing[*]}" >&2
  echo "mcu-build: install them with: apt-get install $(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' ')" >&2
  if [[ -n $JSON_OUT ]]; then
    printf '{"passed": false, "missing_tools": [%s], "targets": {}}\n' \
      "$(printf '"%s",' "${missing[@]}" | sed 's/,$//')" >"$JSON_OUT"
  fi
  exit 1
fi

shopt -s nullglob
SOURCES=("$CORE"/src/*.cpp)
shopt -u nullglob
((${#SOURCES[@]})) || { echo "mcu-build: no core/src/*.cpp found under $CORE" >&2; exit 1; }

mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd -P)

echo "mcu-build: core sources: $(for s in "${SOURCES[@]}"; do printf '%s ' "$(rel "$s")"; done)"
echo "mcu-build: build directory: $BUILD"

# ------------------------------------------------- 1. header guard (grep)

echo
echo "== header guard: #include lines under core/"
guard_before=$fail
# shellcheck disable=SC2094  # rel only prints the name; nothing writes $file
while IFS= read -r -d '' file; do
  lineno=0
  while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    [[ $line =~ ^[[:space:]]*#[[:space:]]*(include|include_next|import)([^a-zA-Z_].*)?$ ]] || continue
    directive=${BASH_REMATCH[1]}
    arg=${BASH_REMATCH[2]}
    arg=${arg#"${arg%%[![:space:]]*}"}          # trim leading blanks
    where="$(rel "$file"):$lineno"
    if [[ $directive != include ]]; then
      problem "$where: '#$directive' is not allowed in the core: $line"
      continue
    fi
    if [[ $arg =~ ^\<([^>]*)\> ]]; then
      name=${BASH_REMATCH[1]}
      shown="<$name>"
    elif [[ $arg =~ ^\"([^\"]*)\" ]]; then
      name=${BASH_REMATCH[1]}
      shown="\"$name\""
    else
      problem "$where: computed or malformed #include ($arg); only <stdint.h>, <stddef.h>, <string.h> and \"resilink/core/...\" are allowed"
      continue
    fi
    if [[ $shown == "<stdint.h>" || $shown == "<stddef.h>" || $shown == "<string.h>" ]]; then
      continue
    fi
    if [[ $name == resilink/core/* && $name != *..* ]]; then
      if [[ -f $INC/$name ]]; then
        continue
      fi
      problem "$where: includes $shown, which is not a core header (no core/include/$name)"
      continue
    fi
    problem "$where: includes $shown; the core may include only <stdint.h>, <stddef.h>, <string.h> and its own \"resilink/core/...\" headers"
  done <"$file"
done < <(find "$CORE" -type f \( -name '*.h' -o -name '*.hh' -o -name '*.hpp' -o -name '*.hxx' \
           -o -name '*.inc' -o -name '*.ipp' -o -name '*.tpp' -o -name '*.inl' \
           -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.cxx' \) -print0 | sort -z)
((fail == guard_before)) && echo "ok: only <stdint.h>, <stddef.h>, <string.h> and resilink/core/ headers are included"

# ------------------------------------------ 2. header guard (compiler)

# Headers: every core header, each preprocessed on its own through a one-line
# TU, so a header that no source includes is checked as well.
HEADERS=()
while IFS= read -r -d '' h; do HEADERS+=("$h"); done \
  < <(find "$INC" -type f \( -name '*.h' -o -name '*.hh' -o -name '*.hpp' \) -print0 | sort -z)

# check_tree TARGET TU HFILE SEARCHDIRS...
# Reads `-H` output (". path" lines, one dot per nesting level) and applies:
#  - a project file reached must be a core header;
#  - a system header reached from a core file (or the TU) must be one of
#    ALLOWED_SYSTEM_HEADERS, found directly in a system include directory;
#  - no C++ library header may be reached at all, even from a C header;
#  - esp8266: <string.h> and <stdint.h> must come from picolibc.
declare -A REPORTED=()   # target|includer|header already reported
check_tree() {
  local target=$1 tu=$2 hfile=$3
  shift 3
  local -a searchdirs=("$@")
  local -a stack=("$tu")
  local line depth path parent dir base ok sd chain i msg
  local bad=0 skip_below=1000000
  while IFS= read -r line; do
    [[ $line =~ ^(\.+)\ (.+)$ ]] || continue
    depth=${#BASH_REMATCH[1]}
    path=$(realpath -m -- "${BASH_REMATCH[2]}")
    stack[depth]=$path
    # Below a header already reported, report nothing more.
    if ((depth > skip_below)); then continue; fi
    skip_below=1000000
    parent=${stack[depth - 1]}
    msg=
    dir=${path%/*}
    base=${path##*/}
    if [[ $path == "$ROOT"/* ]]; then
      [[ $path == "$INC"/resilink/core/* ]] ||
        msg="$(rel "$parent") reaches $(rel "$path"), which is not a core header"
    elif [[ $path == */c++/* || $base != *.* ]]; then
      msg="$(rel "$parent") reaches C++ library header $path"
    elif [[ $parent == "$tu" || $parent == "$CORE"/* ]]; then
      ok=0
      for sd in "${ALLOWED_SYSTEM_HEADERS[@]}"; do [[ $base == "$sd" ]] && ok=1; done
      if ((ok)); then
        ok=0
        for sd in "${searchdirs[@]}"; do [[ $dir == "$sd" ]] && ok=1; done
      fi
      if ((!ok)); then
        msg="$(rel "$parent") includes system header $path; only <stdint.h>, <stddef.h>, <string.h> are allowed"
      elif [[ $target == esp8266 && ($base == string.h || $base == stdint.h) &&
              $dir != "$(realpath -m "$PICOLIBC_INC")" ]]; then
        msg="<$base> resolved to $path, not to picolibc's $PICOLIBC_INC"
      fi
    fi
    # Anything else is a C library header pulled in by an allowed one.
    [[ -z $msg ]] && continue
    bad=1
    skip_below=$depth
    [[ -n ${REPORTED["$target|$parent|$path"]:-} ]] && continue
    REPORTED["$target|$parent|$path"]=1
    chain="$(rel "$tu")"
    for ((i = 1; i <= depth; i++)); do chain+=" -> $(rel "${stack[i]}")"; done
    problem "[$target] $msg (include chain: $chain)"
  done <"$hfile"
  return $bad
}

# ----------------------------------------------------- 3. compile, 4. sizes

declare -A TOTAL_TEXT=() TOTAL_DATA=() TOTAL_BSS=() TOTAL_METHOD=() ENGINE_SIZE=()
declare -A TOTAL_CODE=() TOTAL_RODATA=() ENGINE_ALIGN=() COMPILER=()   # for --json

for target in "${TARGETS[@]}"; do
  set_cxx "$target"
  prefix=$(target_prefix "$target")
  out=$BUILD/$target
  mkdir -p "$out"
  rm -f "$out"/*.o "$out"/*.H "$out"/*.cpp "$out"/ld.log
  target_before=$fail

  echo
  COMPILER[$target]=$("${CXX[0]}" --version | head -n1)
  echo "== $target: ${COMPILER[$target]}"
  echo "   flags: ${CXX[*]:1} ${COMMON_FLAGS[*]}"

  # System include directories, in search order, canonical.
  searchdirs=()
  while IFS= read -r d; do
    searchdirs+=("$(realpath -m -- "$d")")
  done < <("${CXX[@]}" "${COMMON_FLAGS[@]}" -x c++ -E -v /dev/null -o /dev/null 2>&1 |
             sed -n '/^#include <...> search starts here:/,/^End of search list\./{/^ /s/^ *//p}')

  # -- compiler header guard
  tus=("${SOURCES[@]}")
  for h in "${HEADERS[@]}"; do
    name=${h#"$INC"/}
    tu=$out/hdr_${name//\//_}.cpp
    printf '#include "%s"\n' "$name" >"$tu"
    tus+=("$tu")
  done
  probe=$out/probe_engine_size.cpp
  cat >"$probe" <<'EOF'
// Generated by tools/mcu-build.sh: sizeof/alignof(Engine) as symbol sizes.
#include "resilink/core/engine.h"
extern "C" {
extern char resilink_mcu_sizeof_Engine[sizeof(resilink::core::Engine)];
char resilink_mcu_sizeof_Engine[sizeof(resilink::core::Engine)];
extern char resilink_mcu_alignof_Engine[alignof(resilink::core::Engine)];
char resilink_mcu_alignof_Engine[alignof(resilink::core::Engine)];
}
EOF
  tus+=("$probe")
  guard_ok=1
  declare -A PP_FAILED=()
  for tu in "${tus[@]}"; do
    hfile=$out/$(basename "$tu" .cpp).H
    if ! "${CXX[@]}" "${COMMON_FLAGS[@]}" -E -H "$tu" -o /dev/null 2>"$hfile"; then
      # Show the compiler's messages without the -H tree.
      awk '/^Multiple include guards may be useful for:/ {exit} !/^\.+ / {print}' "$hfile" >&2
      problem "[$target] preprocessing $(rel "$tu") failed (see the compiler's message above)"
      PP_FAILED[$tu]=1
      guard_ok=0
    fi
    # Check the part of the tree that was reached, even after a failure.
    check_tree "$target" "$tu" "$hfile" "${searchdirs[@]}" || guard_ok=0
  done
  ((guard_ok)) && echo "   header guard (-H): ok, ${#tus[@]} translation units reach only core headers, <stdint.h>, <stddef.h>, <string.h> and C library internals"

  # -- compile
  objs=()
  compiled=1
  for src in "${SOURCES[@]}"; do
    obj=$out/$(basename "$src" .cpp).o
    if [[ -n ${PP_FAILED[$src]:-} ]]; then
      echo "   not compiling $(rel "$src"): its preprocessing failed above" >&2
      compiled=0
      continue
    fi
    if "${CXX[@]}" "${COMMON_FLAGS[@]}" -c "$src" -o "$obj"; then
      objs+=("$obj")
    else
      problem "[$target] compiling $(rel "$src") failed"
      compiled=0
    fi
  done
  if [[ -n ${PP_FAILED[$probe]:-} ]]; then
    compiled=0
  elif ! "${CXX[@]}" "${COMMON_FLAGS[@]}" -c "$probe" -o "$out/probe_engine_size.probe.o"; then
    problem "[$target] compiling the sizeof(Engine) probe failed"
    compiled=0
  fi
  if ((!compiled)); then
    echo "   (sizes skipped: the core did not compile for $target)"
    continue
  fi

  # -- sizes per object (Berkeley: text = code + read-only data)
  printf '   %-34s %8s %8s %8s\n' object text data bss
  sum_t=0 sum_d=0 sum_b=0
  while read -r t d b _ _ f; do
    printf '   %-34s %8d %8d %8d\n' "$(basename "$f")" "$t" "$d" "$b"
    sum_t=$((sum_t + t)) sum_d=$((sum_d + d)) sum_b=$((sum_b + b))
  done < <("$prefix-size" -B -d "${objs[@]}" | tail -n +2)
  printf '   %-34s %8d %8d %8d\n' "sum of objects" "$sum_t" "$sum_d" "$sum_b"

  # -- firmware-like total: partial link keeping every global core symbol
  roots=()
  while read -r sym _; do roots+=(-u "$sym"); done \
    < <("$prefix-nm" -g --defined-only -P "${objs[@]}" | awk 'NF >= 2 && $1 !~ /:$/ {print $1}' | sort -u)
  partial=$out/core-partial.o
  rm -f "$partial"
  method=
  if "$prefix-ld" -r --gc-sections "${roots[@]}" -o "$partial" "${objs[@]}" 2>"$out/ld.log"; then
    method="ld -r --gc-sections, roots: all $((${#roots[@]} / 2)) global core symbols"
  elif "$prefix-ld" -r -o "$partial" "${objs[@]}" 2>"$out/ld.log"; then
    method="ld -r without --gc-sections (it failed: $(head -n1 "$out/ld.log"))"
  fi
  if [[ -n $method ]]; then
    read -r tot_t tot_d tot_b _ < <("$prefix-size" -B -d "$partial" | tail -n1)
    printf '   %-34s %8d %8d %8d\n' "partial link (core-partial.o)" "$tot_t" "$tot_d" "$tot_b"
    # Split the text figure into code and read-only data.
    read -r code rodata < <("$prefix-size" -A -d "$partial" |
      awk '$1 ~ /^\.(text|literal)/ {c += $2} $1 ~ /^\.rodata/ {r += $2} END {print c + 0, r + 0}')
    echo "   total method: $method"
    echo "   total text = $code code (.text*) + $rodata read-only data (.rodata*) + $((tot_t - code - rodata)) other"
    TOTAL_CODE[$target]=$code
    TOTAL_RODATA[$target]=$rodata
  else
    tot_t=$sum_t tot_d=$sum_d tot_b=$sum_b
    method="sum of objects (ld -r failed: $(head -n1 "$out/ld.log"))"
    echo "   total method: $method"
  fi
  TOTAL_TEXT[$target]=$tot_t
  TOTAL_DATA[$target]=$tot_d
  TOTAL_BSS[$target]=$tot_b
  TOTAL_METHOD[$target]=$method

  # -- what a firmware must provide: C library / libgcc only, no C++ runtime
  if [[ -f $partial ]]; then
    externals=$("$prefix-nm" -u -P "$partial" | awk '{print $1}' | sort -u | tr '\n' ' ')
  else
    externals=$("$prefix-nm" -u -P "${objs[@]}" | awk 'NF >= 2 && $1 !~ /:$/ {print $1}' | sort -u | tr '\n' ' ')
  fi
  echo "   external symbols the firmware must provide: ${externals:-none}"
  for sym in $externals; do
    case $sym in
      _Z* | __cxa_* | __gxx_* | __aeabi_unwind_* | _Unwind_*)
        problem "[$target] the core needs C++ runtime symbol $sym ($(echo "$sym" | "$prefix-c++filt"))" ;;
    esac
  done

  # -- sizeof(Engine), read back as the sizes of the probe's symbols
  esize=$("$prefix-nm" -S -t d -P "$out/probe_engine_size.probe.o" | awk '$1 == "resilink_mcu_sizeof_Engine" {print $4 + 0}')
  ealign=$("$prefix-nm" -S -t d -P "$out/probe_engine_size.probe.o" | awk '$1 == "resilink_mcu_alignof_Engine" {print $4 + 0}')
  if [[ -z $esize || -z $ealign ]]; then
    problem "[$target] could not read sizeof(Engine) from the probe's symbols"
  else
    ENGINE_SIZE[$target]=$esize
    ENGINE_ALIGN[$target]=$ealign
    echo "   static RAM: sizeof(resilink::core::Engine) = $esize bytes (alignof $ealign) per engine," \
         "plus the core's own .data+.bss = $((tot_d + tot_b)) bytes"
  fi
  ((fail == target_before)) && echo "   $target: ok"
done

# ----------------------------------------------------------- summary

echo
echo "== summary (core total; sizeof(Engine) is the static RAM of one engine)"
printf '   %-14s %8s %8s %8s %16s\n' target text data bss 'sizeof(Engine)'
for target in "${TARGETS[@]}"; do
  printf '   %-14s %8s %8s %8s %16s\n' "$target" "${TOTAL_TEXT[$target]:-n/a}" \
    "${TOTAL_DATA[$target]:-n/a}" "${TOTAL_BSS[$target]:-n/a}" "${ENGINE_SIZE[$target]:-n/a}"
done

# ------------------------------------------------------------ 5. budget

echo
echo "== budget"
if [[ -n ${TOTAL_TEXT[$BUDGET_TARGET]:-} ]]; then
  used=${TOTAL_TEXT[$BUDGET_TARGET]}
  echo "core .text on $BUDGET_TARGET: $used bytes (budget $BUDGET)"
  echo "   (Berkeley text: code plus read-only data; ${TOTAL_METHOD[$BUDGET_TARGET]})"
  if ((used > BUDGET)); then
    problem "core .text on $BUDGET_TARGET is $used bytes, $((used - BUDGET)) over the budget of $BUDGET"
  fi
else
  problem "core .text on $BUDGET_TARGET: not measured (the core did not build for $BUDGET_TARGET)"
fi

# ------------------------------------------------------------- --json

# Numbers only where measured; a target that did not build has none.
json_number() { if [[ -n ${1:-} ]]; then printf '%s' "$1"; else printf 'null'; fi; }
json_string() { local v=${1//\\/\\\\}; v=${v//\"/\\\"}; printf '"%s"' "$v"; }
if [[ -n $JSON_OUT ]]; then
  {
    printf '{\n  "passed": %s,\n  "problems": %d,\n' "$( ((fail)) && echo false || echo true)" "$fail"
    printf '  "budget_target": "%s",\n  "text_budget": %d,\n  "targets": {' "$BUDGET_TARGET" "$BUDGET"
    sep=
    for target in "${TARGETS[@]}"; do
      printf '%s\n    "%s": {"compiler": %s, "text": %s, "code": %s, "rodata": %s, "data": %s, "bss": %s,' \
        "$sep" "$target" "$(json_string "${COMPILER[$target]:-}")" "$(json_number "${TOTAL_TEXT[$target]:-}")" \
        "$(json_number "${TOTAL_CODE[$target]:-}")" "$(json_number "${TOTAL_RODATA[$target]:-}")" \
        "$(json_number "${TOTAL_DATA[$target]:-}")" "$(json_number "${TOTAL_BSS[$target]:-}")"
      printf ' "sizeof_engine": %s, "alignof_engine": %s}' \
        "$(json_number "${ENGINE_SIZE[$target]:-}")" "$(json_number "${ENGINE_ALIGN[$target]:-}")"
      sep=,
    done
    printf '\n  }\n}\n'
  } >"$JSON_OUT"
fi

echo
if ((fail)); then
  echo "mcu-build: FAILED: $fail problem(s), see the FAIL lines above" >&2
  exit 1
fi
echo "mcu-build: all checks passed"
