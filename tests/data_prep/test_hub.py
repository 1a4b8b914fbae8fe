"""Dataset sources (``sophiavl.data_prep.hub.resolve_src``): local folders, and ``hf://OWNER/NAME`` resolved from
a hub cache this test lays out itself (blobs, snapshot symlinks, refs), with ``HF_HUB_OFFLINE=1``.

``huggingface_hub`` reads ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE`` when it is imported, so every hub case runs in a
fresh interpreter with those variables set, exactly as a user's command would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sophiavl.data_prep.hub import SourceError, link_root, parse_hub_id, resolve_src
from sophiavl.data_prep.sophiavl_130k import SAMPLE_ROOT
from sophiavl_testing.data_prep_helpers import folder_files, lay_out_hub_cache

COMMIT_MAIN = "a" * 40
COMMIT_V1 = "b" * 40
REPO = "someone/Some-Data.set_1"


def offline_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(cache.parent / "hf_home"))
    return env


def resolve_in_subprocess(cache: Path, src: str, revision: str | None = None) -> tuple[int, str]:
    """Runs ``resolve_src`` in a fresh interpreter; returns (0, folder) or (3, the SourceError message)."""
    code = (
        "import sys\n"
        "from sophiavl.data_prep.hub import SourceError, resolve_src\n"
        "try:\n"
        f"    print(resolve_src({src!r}, revision={revision!r}, allow_patterns=['*.json']))\n"
        "except SourceError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=offline_env(cache), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode, proc.stdout.strip()


@pytest.fixture
def cache(tmp_path) -> Path:
    cache = tmp_path / "hub"
    lay_out_hub_cache(cache, REPO, {"json/a.json": b"[1]", "README.md": b"main"}, COMMIT_MAIN, refs=("main",))
    lay_out_hub_cache(cache, REPO, {"json/a.json": b"[2]"}, COMMIT_V1, refs=("v1",))
    return cache


def test_local_folder_is_returned_as_given(tmp_path):
    assert resolve_src(str(tmp_path)) == tmp_path
    with pytest.raises(SourceError, match="does not exist"):
        resolve_src(str(tmp_path / "nope"))
    (tmp_path / "f.json").write_text("[]")
    with pytest.raises(SourceError, match="is not a folder"):
        resolve_src(str(tmp_path / "f.json"))
    with pytest.raises(SourceError, match="applies to hf:// sources only"):
        resolve_src(str(tmp_path), revision="main")


@pytest.mark.parametrize(
    "src", ["hf://", "hf://owner", "hf://a/b/c", "hf://own er/x", "hf://a/b--c", "hf://a/..b", "hf://-a/b"]
)
def test_malformed_hub_ids_are_refused(src):
    with pytest.raises(SourceError, match="bad hub id"):
        parse_hub_id(src)
    with pytest.raises(SourceError, match="bad hub id"):
        resolve_src(src)


def test_hub_id_spellings():
    assert parse_hub_id("hf://bunny127/SophiaVL-R1-Thinking-156k") == "bunny127/SophiaVL-R1-Thinking-156k"
    assert parse_hub_id("hf://datasets/bunny127/SophiaVL-R1-Thinking-156k/") == "bunny127/SophiaVL-R1-Thinking-156k"


def test_offline_resolves_refs_and_commits_from_the_cache(cache):
    repo = cache / "datasets--someone--Some-Data.set_1"
    assert resolve_in_subprocess(cache, f"hf://{REPO}") == (0, str(repo / "snapshots" / COMMIT_MAIN))
    assert resolve_in_subprocess(cache, f"hf://datasets/{REPO}") == (0, str(repo / "snapshots" / COMMIT_MAIN))
    assert resolve_in_subprocess(cache, f"hf://{REPO}", "v1") == (0, str(repo / "snapshots" / COMMIT_V1))
    assert resolve_in_subprocess(cache, f"hf://{REPO}", COMMIT_V1) == (0, str(repo / "snapshots" / COMMIT_V1))
    folder = Path(resolve_in_subprocess(cache, f"hf://{REPO}", "v1")[1])
    assert (folder / "json" / "a.json").read_bytes() == b"[2]"
    assert link_root(folder) == repo.resolve()  # the snapshot's links point into repo/blobs


def test_offline_misses_are_clear_errors(cache):
    rc, msg = resolve_in_subprocess(cache, "hf://someone/other")
    assert rc == 3 and "not in the hub cache and HF_HUB_OFFLINE=1" in msg and str(cache) in msg
    rc, msg = resolve_in_subprocess(cache, f"hf://{REPO}", "v2")
    assert rc == 3 and "revision v2" in msg and "not in the hub cache" in msg


def test_link_root_of_a_plain_folder_is_itself(tmp_path):
    assert link_root(tmp_path) == tmp_path.resolve()


def _convert_130k(env: dict, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sophiavl.data_prep.sophiavl_130k", "--no-progress", "--val-size", "16", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _rows(out: Path) -> list[dict]:
    return [r for p in sorted(out.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.mark.slow
def test_130k_converter_reads_a_hub_snapshot_like_the_folder(tmp_path):
    """The embedded sample served from a laid-out hub cache converts to the same rows as the folder itself: the
    snapshot's symlinks into blobs/ are accepted, unpacked images and the zip alike."""
    cache = tmp_path / "hub"
    lay_out_hub_cache(cache, "owner/sample-130k", folder_files(SAMPLE_ROOT), COMMIT_MAIN)
    env = offline_env(cache)
    proc = _convert_130k(env, "--src", "hf://owner/sample-130k", "--out", str(tmp_path / "hub_out"))
    assert proc.returncode == 0, proc.stderr
    proc = _convert_130k(env, "--src", str(SAMPLE_ROOT), "--out", str(tmp_path / "dir_out"))
    assert proc.returncode == 0, proc.stderr
    assert _rows(tmp_path / "hub_out") == _rows(tmp_path / "dir_out")
    report = json.loads((tmp_path / "hub_out" / "report.json").read_text())
    assert report["rows_rejected"]["total"] == 0 and report["rows_written"]["total"] == 100
    assert report["options"]["src"] == "hf://owner/sample-130k"
    assert report["source_folder"].endswith(f"snapshots/{COMMIT_MAIN}")
    # a revision that is not cached: exit 2, nothing written
    proc = _convert_130k(env, "--src", "hf://owner/sample-130k", "--revision", "v9", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "not in the hub cache" in proc.stderr and not (tmp_path / "x").exists()
