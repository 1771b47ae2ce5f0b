#!/usr/bin/env bash
# Checks semat's layering rules (docs/architecture.md, "Dependency rules") on the source tree.
#
#   scripts/check-layers.sh [ROOT]     check ROOT (default: this script's repository)
#   scripts/check-layers.sh --self-test
#
# Prints one line per violation, "FILE:LINE: [rule] message", and exits 1 if there is any
# (2 on bad usage). Rules:
#   torch-free      no <torch/...>, <ATen/...>, <c10/...> (or "torch/...") include in
#                   modules/{core,io,matting,metrics,engine,data,serve} and in the public headers of
#                   modules/models (include/). The public headers of losses take torch tensors
#                   today and are not checked.
#   upward-include  an include "semat/<module>/..." must name the file's own module or a module of
#                   a lower rank (table below); modules of the same rank do not include each other.
#   unknown-module  every modules/<name> and every included semat/<name>/ needs a rank below.
#   models-internal semat/models/internal/... (the LibTorch networks) only from models, losses,
#                   train.
#   cmake-include   no CMakeLists.txt / *.cmake outside modules/models puts modules/models/src (or
#                   modules/models/internal) on an include path; link semat_models_internal.
# Tests and benchmarks (tests/, bench/, modules/*/test, modules/*/bench) may include anything.
set -euo pipefail

# Layer ranks: a module may include its own headers and those of strictly lower ranks.
RANKS="core=0 io=1 matting=2 metrics=2 models=3 onnx=4 engine=5 data=6 losses=7 train=8 serve=9 apps=10"
TORCH_FREE="core io matting metrics engine data serve"
INTERNAL_OK="models losses train"

check_tree() {
  local root=$1
  if [[ ! -d $root/modules ]]; then
    echo "check-layers: $root has no modules/ folder" >&2
    return 2
  fi
  cd "$root"
  local out status=0
  out=$(
    {
      find modules apps -type d \( -path 'modules/*/test' -o -path 'modules/*/bench' \) -prune -o \
        -type f \( -name '*.h' -o -name '*.hh' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' \
        -o -name '*.cxx' -o -name '*.inl' -o -name '*.ipp' -o -name '*.cu' -o -name '*.cuh' \) \
        -print 2>/dev/null || true
    } | LC_ALL=C sort | tr '\n' '\0' | xargs -0 -r awk -v ranks="$RANKS" -v torch_free="$TORCH_FREE" \
      -v internal_ok="$INTERNAL_OK" '
      BEGIN {
        n = split(ranks, kv, " ")
        for (i = 1; i <= n; i++) { split(kv[i], p, "="); rank[p[1]] = p[2] + 0 }
        n = split(torch_free, t, " "); for (i = 1; i <= n; i++) tfree[t[i]] = 1
        n = split(internal_ok, t, " "); for (i = 1; i <= n; i++) iok[t[i]] = 1
      }
      FNR == 1 {
        split(FILENAME, part, "/")
        if (part[1] == "apps") mod = "apps"; else mod = part[2]
        if (!(mod in rank) && !(mod in warned)) {
          warned[mod] = 1
          print FILENAME ":1: [unknown-module] modules/" mod " has no rank in scripts/check-layers.sh"
        }
        # The public headers of models and onnx are torch-free (pimpl facades); its src/ and internal/ are not.
        torch_checked = (mod in tfree) || ((mod == "models" || mod == "onnx") && FILENAME ~ /^modules\/(models|onnx)\/include\//)
      }
      !/^[ \t]*#[ \t]*include[ \t]*[<"]/ { next }
      {
        target = $0
        sub(/^[ \t]*#[ \t]*include[ \t]*[<"]/, "", target)
        sub(/[>"].*$/, "", target)
        if (torch_checked && target ~ /^(torch|ATen|c10)\//)
          print FILENAME ":" FNR ": [torch-free] " mod " must not include LibTorch (" target ")"
        if (target !~ /^semat\/[A-Za-z0-9_]+\//) next
        split(target, tp, "/")
        to = tp[2]
        if (!(to in rank)) {
          print FILENAME ":" FNR ": [unknown-module] " target " names no module with a rank"
          next
        }
        if (to == "models" && tp[3] == "internal" && !(mod in iok))
          print FILENAME ":" FNR ": [models-internal] " mod " must not include the LibTorch networks (" target "); use the predictor facades"
        if (to != mod && (mod in rank) && rank[to] >= rank[mod])
          print FILENAME ":" FNR ": [upward-include] " mod " (rank " rank[mod] ") must not include " to " (rank " rank[to] "): " target
      }'
    # CMake: include-directory calls whose arguments name models/src or models/internal.
    {
      [[ -f CMakeLists.txt ]] && echo CMakeLists.txt
      find cmake modules apps tests bench -path modules/models -prune -o -type f \
        \( -name CMakeLists.txt -o -name '*.cmake' \) -print 2>/dev/null || true
    } | LC_ALL=C sort | tr '\n' '\0' | xargs -0 -r awk '
      FNR == 1 { depth = 0 }
      {
        line = $0
        sub(/#.*/, "", line)  # CMake comment (no "#" in our include paths)
        if (depth == 0) {
          if (tolower(line) !~ /(^|[^a-z_])(target_)?include_directories[ \t]*\(/) next
        }
        if (line ~ /(^|[\/" \t])models\/(src|internal)([\/" \t)]|$)/)
          print FILENAME ":" FNR ": [cmake-include] include path reaches into modules/models (link semat_models_internal instead)"
        o = gsub(/\(/, "(", line); c = gsub(/\)/, ")", line)
        depth += o - c
        if (depth < 0) depth = 0
      }'
  ) || status=$?
  if [[ $status -gt 1 ]]; then
    echo "check-layers: scan failed (status $status)" >&2
    return 2
  fi
  if [[ -n $out ]]; then
    printf '%s\n' "$out"
    echo "check-layers: $(printf '%s\n' "$out" | wc -l) violation(s) in $root" >&2
    return 1
  fi
  echo "check-layers: OK ($root)"
}

# Builds a tiny tree that obeys every rule and checks that it passes, then plants violations of
# every rule and checks that each is reported, with its rule, file and line, and nothing else.
self_test() {
  local tmp failures=0
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  local good=$tmp/good
  mkdir -p "$good"/modules/{core,matting,metrics,models,engine,train}/include/semat \
           "$good"/modules/models/{src,internal} "$good"/modules/engine/test "$good"/tests "$good"/apps/semat
  mkdir -p "$good"/modules/core/include/semat/core "$good"/modules/matting/include/semat/matting \
           "$good"/modules/engine/include/semat/engine "$good"/modules/models/include/semat/models
  printf '#pragma once\n#include <string>\n' > "$good"/modules/core/include/semat/core/error.h
  printf '#include "semat/core/error.h"\n#include "semat/matting/trimap.h"\n' \
    > "$good"/modules/matting/include/semat/matting/trimap.h
  printf '#include "semat/core/error.h"\n' > "$good"/modules/models/include/semat/models/sam_predictor.h
  printf '#include <torch/torch.h>\n#include "semat/models/internal/sam/sam.h"\n' \
    > "$good"/modules/models/src/predictor.cpp
  printf '#include <semat/models/sam_predictor.h>\n#include <semat/matting/trimap.h>\n' \
    > "$good"/modules/engine/include/semat/engine/engine.h
  printf '#include <torch/torch.h>\n#include "semat/serve/server.h"\n' > "$good"/modules/engine/test/t.cpp
  printf '#include "semat/models/internal/sam/build.h"\n#include <torch/torch.h>\n' \
    > "$good"/modules/train/include/semat/train.h
  printf '#include "semat/train/trainer.h"\n#include "semat/serve/server.h"\n' > "$good"/apps/semat/main.cpp
  printf 'target_include_directories(t PRIVATE ${PROJECT_SOURCE_DIR}/modules/models/src)\n' \
    > "$good"/modules/models/CMakeLists.txt
  printf 'target_include_directories(x PRIVATE\n  ${CMAKE_CURRENT_SOURCE_DIR}/support)\ntarget_sources(x PRIVATE models/src/a.cpp)\n' \
    > "$good"/tests/CMakeLists.txt
  printf '#include <torch/torch.h>\n' > "$good"/tests/t.cpp
  if ! (check_tree "$good" >/dev/null); then
    echo "self-test: a clean tree was rejected:" >&2
    (check_tree "$good" >&2) || true
    failures=$((failures + 1))
  fi

  # plant FILE CONTENT EXPECT: append CONTENT to FILE of the clean tree; the check of the planted
  # tree must fail and report every EXPECT (each names its own file and line).
  local expects=()
  plant() {
    mkdir -p "$(dirname "$good/$1")"
    printf '%b' "$2" >> "$good/$1"
    expects+=("$3")
  }
  plant modules/core/src/log.cpp '#include "semat/core/error.h"\n  #  include <ATen/ATen.h>\n' \
    'modules/core/src/log.cpp:2: [torch-free]'
  plant modules/models/include/semat/models/sam_predictor.h '#include <c10/util/Half.h>\n' \
    'modules/models/include/semat/models/sam_predictor.h:2: [torch-free]'
  plant modules/engine/src/engine.cpp '#include "torch/script.h"\n' \
    'modules/engine/src/engine.cpp:1: [torch-free]'
  plant modules/matting/src/pipeline.cpp '#include "semat/engine/engine.h"\n' \
    'modules/matting/src/pipeline.cpp:1: [upward-include] matting (rank 2) must not include engine'
  plant modules/metrics/src/m.cpp '#include <semat/matting/trimap.h>\n' \
    'modules/metrics/src/m.cpp:1: [upward-include] metrics (rank 2) must not include matting (rank 2)'
  plant modules/core/src/a.cpp '#include "semat/python/x.h"\n' \
    'modules/core/src/a.cpp:1: [unknown-module]'
  plant modules/newmod/src/a.cpp '#include "semat/core/error.h"\n' \
    'modules/newmod/src/a.cpp:1: [unknown-module] modules/newmod'
  plant modules/engine/src/models.cpp '#include "semat/models/internal/sam/sam.h"\n' \
    'modules/engine/src/models.cpp:1: [models-internal]'
  plant tests/CMakeLists.txt 'target_include_directories(y PRIVATE ${A}\n  ${PROJECT_SOURCE_DIR}/modules/models/src\n  ${B})\n' \
    'tests/CMakeLists.txt:5: [cmake-include]'
  plant modules/train/CMakeLists.txt 'include_directories(../models/internal)\n' \
    'modules/train/CMakeLists.txt:1: [cmake-include]'

  local out rc=0 e
  out=$(check_tree "$good" 2>/dev/null) || rc=$?
  if [[ $rc -ne 1 ]]; then
    echo "self-test: the planted tree gave exit $rc, not 1" >&2
    failures=$((failures + 1))
  fi
  for e in "${expects[@]}"; do
    if [[ $out != *"$e"* ]]; then
      echo "self-test: not detected: $e" >&2
      failures=$((failures + 1))
    fi
  done
  if [[ $(printf '%s\n' "$out" | wc -l) -ne ${#expects[@]} ]]; then
    echo "self-test: expected ${#expects[@]} violations, got:" >&2
    printf '%s\n' "$out" >&2
    failures=$((failures + 1))
  fi

  if [[ $failures -gt 0 ]]; then
    echo "check-layers self-test: $failures failure(s)" >&2
    return 1
  fi
  echo "check-layers self-test: OK"
}

case "${1:-}" in
  --self-test) self_test ;;
  -h|--help) sed -n '2,20p' "$0" ;;
  -*) echo "usage: $0 [ROOT] | --self-test" >&2; exit 2 ;;
  *)
    root=${1:-$(dirname "$0")/..}
    if [[ ! -d $root ]]; then echo "check-layers: no folder $root" >&2; exit 2; fi
    check_tree "$(cd "$root" && pwd)" ;;
esac
