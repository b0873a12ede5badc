#!/usr/bin/env bash
# Create the virtual environment and install the pinned stack (DESIGN.md), mmcv built from source.
# The first run builds mmcv 2.1.0's C++ ops: about 12 minutes on 2 cores. pip caches the wheel,
# so later runs (and new venvs on the same machine) take under a minute.
# GPU nodes (README, "On a cluster"): TORCH_INDEX_URL=https://download.pytorch.org/whl/<cuda tag>
# takes torch's CUDA build from PyTorch's index; MMCV_CUDA=1 builds mmcv's CUDA ops as well
# (FORCE_CUDA=1 for its setup.py: needs nvcc, $CUDA_HOME, of the CUDA version torch was built
# with; TORCH_CUDA_ARCH_LIST, e.g. "8.0;9.0", picks the GPU architectures, else torch compiles
# for the GPUs it sees, or for every architecture when it sees none), never reusing a CPU build.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."
log=$VENV/setup.log

step() { printf '\n[setup] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV with $($PYTHON --version)"
  $PYTHON -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
: >"$log"

step "torch 2.13.0 from ${TORCH_INDEX_URL:-the default index} and build tools"
torch_args=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  torch_args=(--index-url "$TORCH_INDEX_URL")
  # a CPU torch 2.13.0 already here satisfies the pin: replace it
  "$VENV/bin/python" -c 'import sys, torch; sys.exit(torch.version.cuda is None)' 2>/dev/null ||
    torch_args+=(--force-reinstall)
fi
pip install -q torch==2.13.0 "${torch_args[@]}"
pip install -q 'setuptools<82' wheel ninja 'numpy<2.3'

ops_check='import mmcv.ops'
mmcv_args=()
if [ "${MMCV_CUDA:-0}" = 1 ]; then
  ops_check='from mmcv.ops import get_compiling_cuda_version as v; assert v() != "not available"'
  # pip's cache and an installed mmcv may be the CPU build: neither is reused
  mmcv_args=(--no-cache-dir --force-reinstall --no-deps)
  "$VENV/bin/python" -c 'import mmcv' 2>/dev/null || mmcv_args=(--no-cache-dir)
fi
if ! "$VENV/bin/python" -c "$ops_check" 2>/dev/null; then
  step "mmcv 2.1.0 with ops${MMCV_CUDA:+ (CUDA)}, built from source: the first time this takes about 12 minutes on 2 cores (log: $log)"
  ( MMCV_WITH_OPS=1 FORCE_CUDA=${MMCV_CUDA:-0} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      pip install -v --no-build-isolation "${mmcv_args[@]}" mmcv==2.1.0 >>"$log" 2>&1 ) &
  build=$!
  start=$SECONDS
  while kill -0 $build 2>/dev/null; do
    sleep 20
    last=$(grep -o -E '^ *\[[0-9]+/[0-9]+\] c' "$log" | tail -n 1 | tr -dc '0-9/' || true)
    progress='preparing (or installing the cached wheel)'
    [ -n "$last" ] && progress="compiled $last C++ files"
    printf '[setup] mmcv: %3ds elapsed, %s\n' $((SECONDS - start)) "$progress"
  done
  if ! wait $build; then
    tail -n 40 "$log"
    echo "[setup] mmcv build failed; full log in $log" >&2
    exit 1
  fi
fi

step "mmengine, mmdet, ray[tune], mlflow and the project"
pip install -q -e '.[test]'
"$VENV/bin/python" -c "$ops_check"
"$VENV/bin/python" -c 'import mmcv.ops, mmdet, mmengine, ray, mlflow, prm_rga, torch; print("[setup] ok: mmcv", mmcv.__version__, "(CUDA ops:", mmcv.ops.get_compiling_cuda_version() + ") mmdet", mmdet.__version__, "torch", torch.__version__, "(CUDA:", torch.version.cuda, "GPUs visible:", torch.cuda.device_count(), end=")\n")'
if ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null; then
  step "chromium and chromedriver (Debian) for the dashboard's headless-browser test"
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo -n apt-get "$@"; fi; }
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt_get install -y -q chromium chromium-driver ||
         { apt_get update -q && apt_get install -y -q chromium chromium-driver; }; } >>"$log" 2>&1; then
    echo "[setup] could not install chromium (see $log): tests/test_dashboard.py will be skipped (and fail where \$CI is set)"
  fi
fi
touch "$VENV/.installed"
