"""The embedded sample: committed output of its generator, small, in the released layout, covering every type."""

from __future__ import annotations

import zipfile
from pathlib import Path

from sophiavl.data_prep.sample.make_sample import build
from sophiavl.data_prep.sophiavl_130k import SAMPLE_ROOT
from sophiavl_testing.data_prep_helpers import sample_records


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generator_is_deterministic_and_matches_the_committed_sample(tmp_path):
    build(tmp_path / "a")
    build(tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b  # byte for byte, images and zip included
    committed = _files(SAMPLE_ROOT)
    assert a.keys() == committed.keys()
    # record files must match exactly; images may differ in encoding across Pillow versions
    assert {k: v for k, v in a.items() if k.startswith("json/")} == {
        k: v for k, v in committed.items() if k.startswith("json/")
    }


def test_sample_layout_and_size():
    files = _files(SAMPLE_ROOT)
    assert sum(len(v) for v in files.values()) < 1_000_000
    assert sorted(k for k in files if k.startswith("json/")) == [
        "json/chart.json",
        "json/general.jsonl",
        "json/knowledge.json",
        "json/math.json",
        "json/ocr.json",
    ]
    assert not (SAMPLE_ROOT / "Chart").exists()  # the chart subset is still zipped
    members = zipfile.ZipFile(SAMPLE_ROOT / "Chart.zip").namelist()
    assert len(members) == 18 and all(m.startswith("Chart/bars/") for m in members)
    for sub in ("Math", "OCR", "Knowledge", "General"):
        assert (SAMPLE_ROOT / sub).is_dir()


def test_sample_covers_every_problem_type_and_text_only_rows():
    recs = sample_records(SAMPLE_ROOT)
    assert len(recs) == 100
    types = {r["problem_type"] for r in recs}
    assert types == {"numerical", "multiple choice", "OCR", "free-form", "text"}
    text_only = [r for r in recs if r["data_type"] != "image"]
    assert len(text_only) == 14 and {r["problem_type"] for r in text_only} == {"numerical", "text"}
    assert all(r["options"] for r in recs if r["problem_type"] == "multiple choice")
    assert all(r["solution"].startswith("<answer>") and r["solution"].endswith("</answer>") for r in recs)
    assert sum(isinstance(r["path"], list) for r in recs) == 4  # two-image rows
