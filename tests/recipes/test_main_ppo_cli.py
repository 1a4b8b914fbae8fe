"""``python -m verl.trainer.main_ppo +recipe=... --cfg job`` run as a user would, from outside the repository.

In-process compose tests cannot catch packaging or search-path mistakes; these run the real entry point in a
subprocess, once against the editable install and once against a regular install built from a wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# Runs main_ppo with the editable install's import hooks removed, so that only PYTHONPATH (the unpacked wheel)
# can provide `sophiavl`; it fails loudly if the package still comes from the repository.
_REGULAR_INSTALL_RUNNER = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", type(f).__name__)]
sys.path_hooks[:] = [h for h in sys.path_hooks if "Editable" not in getattr(h, "__qualname__", "")]
sys.path[:] = [p for p in sys.path if "__editable__" not in p]
sys.path_importer_cache.clear()
import sophiavl.recipes
assert sophiavl.recipes.__file__.startswith(sys.argv[1]), sophiavl.recipes.__file__
sys.argv = ["main_ppo"] + sys.argv[2:]
runpy.run_module("verl.trainer.main_ppo", run_name="__main__", alter_sys=True)
"""


def _job_config(stdout: str) -> dict:
    config = yaml.safe_load(stdout)
    assert isinstance(config, dict), stdout[-2000:]
    return config


def _run(args: list[str], cwd: Path, env: dict | None = None) -> dict:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _job_config(proc.stdout)


def _main_ppo(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "verl.trainer.main_ppo", *overrides, "--cfg", "job"]


def test_paper_recipe_from_another_directory(tmp_path):
    config = _run(_main_ppo("+recipe=sophiavl"), cwd=tmp_path)
    assert "recipe" not in config  # the group was found, not added as a string key
    assert config["algorithm"]["adv_estimator"] == "trust_grpo"
    assert config["algorithm"]["trust_grpo"]["semantics"] == "paper"
    assert config["algorithm"]["trust_grpo"]["alpha"] == 0.3
    assert config["actor_rollout_ref"]["rollout"]["n"] == 8
    assert config["actor_rollout_ref"]["actor"]["optim"]["lr"] == 5e-7


def test_official_recipe_and_override_from_another_directory(tmp_path):
    config = _run(_main_ppo("+recipe=sophiavl_official", "algorithm.trust_grpo.alpha=0.5"), cwd=tmp_path)
    assert "recipe" not in config
    assert config["algorithm"]["trust_grpo"]["semantics"] == "official"
    assert config["algorithm"]["trust_grpo"]["anneal_T"] == 12000
    assert config["algorithm"]["trust_grpo"]["alpha"] == 0.5
    assert config["actor_rollout_ref"]["actor"]["optim"]["lr"] == 6e-7


def test_unknown_recipe_fails_from_another_directory(tmp_path):
    proc = subprocess.run(_main_ppo("+recipe=nonexistent"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "nonexistent" in proc.stderr


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory) -> Path:
    """Builds the wheel from a clean copy of the sources and unpacks it, as a regular install lays it out."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    ignore = shutil.ignore_patterns(".venv*", ".git", "build", "*.egg-info", "data", "__pycache__", "bench-results")
    shutil.copytree(REPO, src, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = work.glob("sophiavl_r1-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_regular_install_finds_the_recipe(tmp_path, unpacked_wheel):
    assert (unpacked_wheel / "sophiavl" / "recipes" / "config" / "recipe" / "sophiavl.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    args = [sys.executable, "-c", _REGULAR_INSTALL_RUNNER, str(unpacked_wheel), "+recipe=sophiavl", "--cfg", "job"]
    config = _run(args, cwd=tmp_path, env=env)
    assert "recipe" not in config
    assert config["algorithm"]["trust_grpo"]["semantics"] == "paper"
