"""Users must not mistake ``normalize: papo`` for the better-known PAPO of multimodal RL (Perception-Aware Policy
Optimization, arXiv 2507.06448: a perception loss against a masked image, not implemented here). Wherever a user meets
the name, the process-reward normalisation it follows (arXiv 2603.26535) is named: every docs page that mentions it,
the recipe's and the key's comments, and ``python -m sophiavl.rewards.trust --help``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
OURS = "2603.26535"
OTHER = "2507.06448"
PAPO = re.compile(r"\bpapo\b", re.I)


def test_the_pages_that_name_papo_are_found():
    """The check below looks at pages that still mention the mode (so that it cannot pass on no page at all)."""
    named = {p.name for p in PAGES if PAPO.search(p.read_text(encoding="utf-8"))}
    assert {"README.md", "beyond-the-paper.md", "recipe-keys.md"} <= named


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_that_names_papo_says_which(page):
    text = page.read_text(encoding="utf-8")
    if PAPO.search(text):
        assert OURS in text, f"{page.name} mentions papo without naming arXiv {OURS} (the process-reward PAPO)"


@pytest.mark.parametrize("page", ["README.md", "docs/beyond-the-paper.md", "docs/recipe-keys.md"])
def test_where_the_recipe_and_key_are_listed_the_other_papo_is_ruled_out(page):
    """The recipe table, the key's rows and the page on the modes name the other PAPO and say it is not implemented."""
    text = (REPO / page).read_text(encoding="utf-8")
    assert "Perception-Aware Policy Optimization" in text and OTHER in text
    assert "not implemented" in text or "does not implement" in text


def test_the_recipe_and_the_key_comment_say_which():
    papo = (REPO / "recipes" / "config" / "recipe" / "sophiavl_papo.yaml").read_text(encoding="utf-8")
    assert OURS in papo and OTHER in papo and "Perception-Aware Policy Optimization" in papo
    default = (REPO / "recipes" / "config" / "recipe" / "sophiavl.yaml").read_text(encoding="utf-8")
    (line,) = [line for line in default.splitlines() if line.strip().startswith("normalize:")]
    assert OURS in line


def test_the_trust_command_help_says_which():
    proc = subprocess.run(
        [sys.executable, "-m", "sophiavl.rewards.trust", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    help_text = " ".join(proc.stdout.split())  # argparse wraps lines
    assert "papo" in help_text and OURS in help_text
    assert "not Perception-Aware Policy Optimization" in help_text and OTHER in help_text
    assert "not implemented" in help_text


def test_the_mode_docstrings_say_which():
    from sophiavl.rewards.trust import config, variants

    for module in (config, variants):
        source = Path(module.__file__).read_text(encoding="utf-8")
        assert OURS in source and "Perception-Aware Policy Optimization" in source, module.__name__
