"""docs/verl-known-issues.md, item 1: the reproduction script shipped for upstream still reproduces the Qwen2.5-VL
position-id bug on the pinned verl, and the fix the page proposes gives the right layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from verl.utils import tensordict_utils as tu

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docs" / "upstream" / "repro_qwen2_5_vl_position_ids.py"


def test_repro_script_reproduces_on_the_pinned_verl():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "sequence lengths [4, 5]: ok" in lines
    assert any(line.startswith("sequence lengths [5, 5]: position_ids values have shape (8, 5)") for line in lines)
    assert lines[-1].startswith("REPRODUCED")


def test_proposed_fix_keeps_four_rows_for_equal_lengths():
    # two sequences of 5 tokens, mrope ids (4, 5) each: stating the ragged dimension gives values (4, 10)
    parts = [torch.arange(20).reshape(4, 5), torch.arange(20, 40).reshape(4, 5)]
    nested = tu.nested_tensor_from_tensor_list(parts, ragged_idx=2)
    assert tuple(nested.values().shape) == (4, 10)
    assert nested.offsets().tolist() == [0, 5, 10]
    assert torch.equal(nested.values()[:, 5:], parts[1])
