#!/usr/bin/env bash
# Set up wandown in ./.venv: runtime dependencies, and with --dev the test tools too.
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) echo "usage: ./installd.sh [--dev]"; exit 0 ;;
    *) echo "installd.sh: unknown option '$arg' (use --dev or --help)" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "installd.sh: $python was not found. Install Python 3.10 or newer (e.g. apt install python3 python3-venv)." >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "installd.sh: wandown needs Python 3.10 or newer; $python is $("$python" -V 2>&1). Install a newer python3." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  if command -v uv >/dev/null 2>&1; then
    echo "creating .venv with uv"
    uv venv --quiet --python "$python" .venv
  else
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      echo "installd.sh: the Python venv module is missing. Install it (e.g. apt install python3-venv) and run again." >&2
      exit 1
    fi
    echo "creating .venv with $python -m venv"
    "$python" -m venv .venv
  fi
else
  echo ".venv already exists"
fi

# Each entry is a pip name, or pip-name=module where the module it installs has another name.
runtime=(urllib3 blake3)
devtools=(pytest pytest-xdist=xdist ruff mypy huggingface_hub wheel)
wanted=("${runtime[@]}")
[ "$dev" = 1 ] && wanted+=("${devtools[@]}")

missing=()
for entry in "${wanted[@]}"; do
  pkg=${entry%%=*}
  module=${entry#*=}
  .venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$module') is None)" \
    || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if command -v uv >/dev/null 2>&1; then
    uv pip install --quiet --python .venv/bin/python "${missing[@]}"
  else
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "${missing[@]}"
  fi
else
  echo "nothing to install: ${wanted[*]%%=*} already present"
fi

echo
echo "ready. start wandown with:  .venv/bin/python wandown.py"
[ "$dev" = 1 ] && echo "run the tests with:         .venv/bin/python -m pytest -q"
exit 0
