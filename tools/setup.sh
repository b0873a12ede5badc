#!/usr/bin/env bash
# Create the virtual environment and install the pinned stack (DESIGN.md), mmcv built from source.
# The first run builds mmcv 2.1.0's C++ ops: about 12 minutes on 2 cores. pip caches the wheel,
# so later runs (and new venvs on the same machine) take under a minute.
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

step "torch 2.13.0 (CPU build) and build tools"
pip install -q torch==2.13.0 'setuptools<82' wheel ninja 'numpy<2.3'

if ! "$VENV/bin/python" -c 'import mmcv.ops' 2>/dev/null; then
  step "mmcv 2.1.0 with ops, built from source: the first time this takes about 12 minutes (log: $log)"
  ( MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      pip install -v --no-build-isolation mmcv==2.1.0 >>"$log" 2>&1 ) &
  build=$!
  start=$SECONDS
  while kill -0 $build 2>/dev/null; do
    sleep 20
    last=$(grep -o -E '^ *\[[0-9]+/[0-9]+\] c' "$log" | tail -n 1 | tr -dc '0-9/' || true)
    printf '[setup] mmcv: %3ds elapsed, %s\n' $((SECONDS - start)) \
      "${last:+compiled $last C++ files}${last:-preparing (or installing the cached wheel)}"
  done
  if ! wait $build; then
    tail -n 40 "$log"
    echo "[setup] mmcv build failed; full log in $log" >&2
    exit 1
  fi
fi

step "mmengine, mmdet, ray[tune], mlflow and the project"
pip install -q -e '.[test]'
"$VENV/bin/python" -c 'import mmcv.ops, mmdet, mmengine, ray, mlflow, prm_rga; print("[setup] ok: mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "torch", __import__("torch").__version__)'
if ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null; then
  step "chromium and chromedriver (Debian) for the dashboard's headless-browser test"
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo -n apt-get "$@"; fi; }
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt_get install -y -q chromium chromium-driver ||
         { apt_get update -q && apt_get install -y -q chromium chromium-driver; }; } >>"$log" 2>&1; then
    echo "[setup] could not install chromium (see $log): tests/test_dashboard.py will be skipped"
  fi
fi
touch "$VENV/.installed"
