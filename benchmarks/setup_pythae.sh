#!/usr/bin/env bash
# Build benchmarks/.venv-pythae: pythae 0.1.2 on the same torch as vaelab, isolated from vaelab's venv.
# Usage: bash benchmarks/setup_pythae.sh [python]   (default: python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${1:-python3}"
venv="$here/.venv-pythae"
"$python" -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
# torch first, so that pythae's loose "torch>=1.10.1" does not pull a different (CUDA) build.
"$venv/bin/pip" install "torch==2.13.0"
"$venv/bin/pip" install -r "$here/requirements-pythae.txt"
"$venv/bin/python" -c "import torch, pythae; print('pythae', pythae.__version__ if hasattr(pythae, '__version__') else '0.1.2', 'torch', torch.__version__)"
