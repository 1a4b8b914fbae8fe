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


def source_files(*folders: str) -> list[str]:
    """The repository's files under ``folders`` (all when none), relative: committed, or new and not ignored; files
    deleted from the work tree left out."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *folders],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    return [path for path in listed if (REPO / path).is_file()]


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> tuple[Path, str]:
    """Builds the wheel from a clean copy of the sources (what a fresh clone has, plus new files git does not
    ignore); returns its path and what the build printed."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for path in source_files():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, src / path)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = work.glob("sophiavl_r1-*.whl")
    return wheel, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def unpacked_wheel(built_wheel, tmp_path_factory) -> Path:
    """The wheel unpacked, as a regular install lays it out."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(built_wheel[0]) as archive:
        archive.extractall(site)
    return site


PACKAGE_FOLDERS = ("recipes", "rewards", "data_prep", "trm", "eval")  # each is sophiavl.<folder> (pyproject.toml)


def test_the_wheel_holds_every_package_file_and_its_metadata(built_wheel):
    """Every file of the five package folders (committed, or new and not ignored) is in the wheel under
    `sophiavl/`, the recipe YAMLs, the judge prompt and the embedded sample included; nothing else but the
    dist-info. The metadata carries the verl plugin entry point and an SPDX license, and the build warns of no
    deprecated setting (setuptools stops accepting them in 2027)."""
    wheel, log = built_wheel
    expected = {f"sophiavl/{path}" for path in source_files(*PACKAGE_FOLDERS)}
    assert "sophiavl/recipes/config/recipe/sophiavl.yaml" in expected  # the listing itself worked
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (dist_info,) = {name.split("/")[0] for name in names if ".dist-info/" in name}
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    packaged = {name for name in names if not name.startswith(dist_info)}
    assert packaged == expected, f"missing {sorted(expected - packaged)[:10]}; extra {sorted(packaged - expected)[:10]}"
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "[verl.plugins]\nsophiavl = sophiavl.recipes.plugin" in entry_points
    assert "deprecated" not in log.lower(), log[-3000:]


def test_regular_install_finds_the_recipe(tmp_path, unpacked_wheel):
    assert (unpacked_wheel / "sophiavl" / "recipes" / "config" / "recipe" / "sophiavl.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    args = [sys.executable, "-c", _REGULAR_INSTALL_RUNNER, str(unpacked_wheel), "+recipe=sophiavl", "--cfg", "job"]
    config = _run(args, cwd=tmp_path, env=env)
    assert "recipe" not in config
    assert config["algorithm"]["trust_grpo"]["semantics"] == "paper"
