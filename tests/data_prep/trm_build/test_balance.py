"""``balance``: each rule counted by hand on small annotation folders, the label of several samples, bins, min/max,
seeded reproducibility, bad lines counted and not fatal."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import pytest

from sophiavl.data_prep.trm_build.annotation import Annotation
from sophiavl.data_prep.trm_build.bins import DEFAULT_EDGES, bin_names, bin_of, check_edges
from sophiavl.data_prep.trm_build.cli import main
from sophiavl.data_prep.trm_build.digests import DigestSet
from sophiavl.data_prep.trm_build.reservoir import Reservoir
from sophiavl.data_prep.trm_build.rules import disagrees, snapped_mean
from sophiavl.rewards.collect import RolloutRecord
from sophiavl_testing.data_prep_helpers import png_bytes

GOOD = "<think>Two and two make four.</think><answer>4</answer>"


def ann(rid, scores=(0.5,), *, question=None, response=GOOD, images=(), row_error=None, judge="J1", errors=None):
    """One annotation with K = len(scores) samples (a None score is a failed sample)."""
    question = question if question is not None else f"What is {rid}?"
    index = int(rid[1:]) if rid[1:].isdigit() else 0
    rollout = RolloutRecord(
        rid, "train", index, f"p{rid}", "Math", "numerical", question, response, 1.0, 1, "g", "grpo"
    )
    if row_error:
        return Annotation(rollout, judge, "a" * 64, list(images), row_error=row_error)
    errs = errors or [None if s is not None else "timeout: 30 s" for s in scores]
    raw = [None if s is None else str(s) for s in scores]
    return Annotation(rollout, judge, "a" * 64, list(images), list(scores), raw, errs)


def write_folder(folder: Path, files: dict[str, list], images: dict[str, bytes] = ()) -> Path:
    """``files``: name -> lines (an Annotation or a raw string written as is)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name, data in dict(images).items():
        (folder / "images" / name).write_bytes(data)
    for name, lines in files.items():
        text = "".join(x.to_line() if isinstance(x, Annotation) else x for x in lines)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


IMG = png_bytes(8, 8, (0, 128, 255))
IMG_NAME = "c0ffee" + "0" * 58 + ".png"


def _line_with_scores(scores) -> str:
    data = json.loads(ann("r99").to_line())
    data["scores"], data["raw"], data["errors"] = scores, ["x"] * len(scores), [None] * len(scores)
    return json.dumps(data) + "\n"


@pytest.fixture
def folders(tmp_path):
    """Two judges' folders; every row's fate worked out by hand in the comments (--max-response-chars 200,
    --agree-tol 0.2)."""
    same_q = "What is r02?"
    a_lines = [
        ann("r01", (0.0,)),  # with B's 0.2: samples [0, 2], spread 0.2 (not > 0.2), mean 1 -> 0.1, eligible
        ann("r02", (0.1,)),  # eligible, 0.1
        ann("r03", (0.1,)),  # B has another response for r03 -> conflicting_rollout
        ann("r04", (0.5,), response="<answer>1</answer>"),  # bad_format
        ann("r05", (0.5,), response="<think>  </think><answer>1</answer>"),  # empty_thinking
        ann("r06", (0.5,), response="<think>" + "x" * 200 + "</think><answer>1</answer>"),  # too_long
        ann("r07", (0.1,), question=same_q),  # the same question and response as r02 -> duplicate
        ann("r08", row_error="missing_row: train/8"),  # failed_annotation
        ann("r09", (None,)),  # failed_annotation (no sample scored)
        ann("r10", (0.2, 0.6)),  # spread 0.4 > 0.2 -> disagreement (label 0.4 counted as labelled)
        ann("r11", (0.6, 0.7)),  # with B's 0.7: [6, 7, 7] mean 6.67 -> 0.7, spread 0.1, eligible
        ann("r12", (0.9,), images=[IMG_NAME]),  # eligible, 0.9, an image row
        ann("r13", (0.8,), images=["deadbeef.png"]),  # image_missing
        "{not json\n",  # bad_json
        _line_with_scores([0.55]),  # score_off_grid
        '{"v": 1, "rollout": {}}\n',  # bad_annotation
        ann("r14", (1.0,)),  # eligible, 1.0 (shares the last bin with 0.9)
        ann("r15", (0.4,), question="<image>"),  # empty_question
    ]
    a = write_folder(tmp_path / "judge1", {"annotations-a.jsonl": a_lines,
                                            "annotations-b.jsonl": [ann("r17", (0.3,)).to_line()[:-1]]},  # torn_line
                     {IMG_NAME: IMG})  # fmt: skip
    b_lines = [
        ann("r11", (0.7,), judge="J2"),
        ann("r01", (0.2,), judge="J2"),
        ann("r03", (0.1,), judge="J2", response="<think>Other.</think><answer>4</answer>"),
        ann("r16", (0.3,), judge="J2", images=[IMG_NAME], question="<image>Which colour?"),  # eligible, 0.3
    ]
    b = write_folder(tmp_path / "judge2", {"annotations-x.jsonl": b_lines}, {IMG_NAME: IMG})
    return a, b


def run_balance(folders, out, *extra) -> tuple[int, dict]:
    argv = ["balance", "--annotations", *map(str, folders), "--out", str(out), "--max-response-chars", "200",
            "--agree-tol", "0.2", *extra]  # fmt: skip
    rc = main(argv)
    report_path = out / "report" / "report.json"
    return rc, json.loads(report_path.read_text()) if report_path.exists() else {}


def test_every_rule_is_counted_once_in_order_with_an_example(folders, tmp_path, capsys):
    rc, rep = run_balance(folders, tmp_path / "out", "--min", "1", "--max", "2")
    assert rc == 0
    assert rep["lines"]["read"] == 23 and rep["lines"]["valid"] == 19  # 18 + 1 lines in judge1, 4 in judge2
    assert rep["lines"]["rejected"] == {"torn_line": 1, "bad_json": 1, "score_off_grid": 1, "bad_annotation": 1}
    assert "0.55" in rep["lines"]["examples"]["score_off_grid"]
    assert rep["lines"]["sample_errors"] == {"timeout": 1} and rep["lines"]["row_errors"] == {"missing_row": 1}
    rows = rep["rows"]
    assert rows["total"] == 16 and rows["with_several_lines"] == 3  # r01, r03, r11
    assert rows["rejected"] == {
        "conflicting_rollout": 1, "failed_annotation": 2, "disagreement": 1, "bad_format": 1, "empty_thinking": 1,
        "empty_question": 1, "too_long": 1, "too_many_images": 0, "image_missing": 1, "duplicate": 1,
    }  # fmt: skip
    assert rows["examples"]["duplicate"]["rid"] == "r07" and rows["examples"]["conflicting_rollout"]["rid"] == "r03"
    assert rows["examples"]["failed_annotation"]["rid"] == "r08"
    assert "missing_row" in rows["examples"]["failed_annotation"]["detail"]
    assert rows["eligible"] == 6 and rows["selected"] == 6
    assert rows["judges"] == {"J1": 15, "J2": 4}  # rows each judge labelled (r01, r03, r11 by both)
    # labelled: every row that got a label (r03 and the failed ones did not); r10's label is (2 + 6) / 2 = 4
    grid = {g: v["labelled"] for g, v in rep["grid"].items() if v["labelled"]}
    assert grid == {"0.1": 3, "0.3": 1, "0.4": 2, "0.5": 3, "0.7": 1, "0.8": 1, "0.9": 1, "1.0": 1}
    eligible = {b["bin"]: b["eligible"] for b in rep["bins"] if b["eligible"]}
    assert eligible == {"[0.1-0.2)": 2, "[0.3-0.4)": 1, "[0.7-0.8)": 1, "[0.9-1.0]": 2}
    assert rep["short_bins"] == ["[0.0-0.1)", "[0.2-0.3)", "[0.4-0.5)", "[0.5-0.6)", "[0.6-0.7)", "[0.8-0.9)"]
    out = capsys.readouterr().out
    assert "[0.9-1.0]" in out and "short (< --min 1)" in out and "duplicate 1" in out


def test_the_layout_holds_the_eligible_rows_with_their_labels_and_one_copy_per_image(folders, tmp_path):
    out = tmp_path / "out"
    run_balance(folders, out, "--min", "0")
    texts = [json.loads(x) for x in (out / "text_part.jsonl").read_text().splitlines()]
    mm = json.loads((out / "json" / "multimodal_part.json").read_text())
    assert {r["id"]: r["score"] for r in texts} == {"r01": 0.1, "r02": 0.1, "r11": 0.7, "r14": 1.0}
    assert {r["id"]: r["score"] for r in mm} == {"r12": 0.9, "r16": 0.3}
    r01 = next(r for r in texts if r["id"] == "r01")
    assert r01["samples"] == [0.0, 0.2] and r01["judges"] == ["J1", "J2"]
    assert [r["path"] for r in mm] == [f"images/c0/{IMG_NAME}"] * 2  # both rows point at the one copy
    assert [p.name for p in (out / "images").rglob("*") if p.is_file()] == [IMG_NAME]
    assert (out / "images" / "c0" / IMG_NAME).read_bytes() == IMG
    assert (out / "report" / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".balance-*"))  # the temporary database is gone


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_the_same_input_and_seed_give_byte_identical_output_and_max_caps_each_bin(folders, tmp_path):
    _, rep1 = run_balance(folders, tmp_path / "o1", "--max", "1", "--min", "1", "--seed", "7")
    _, rep2 = run_balance(folders, tmp_path / "o2", "--max", "1", "--min", "1", "--seed", "7")
    assert _outputs(tmp_path / "o1") == _outputs(tmp_path / "o2")
    selected = {b["bin"]: b["selected"] for b in rep1["bins"] if b["selected"]}
    assert selected == {"[0.1-0.2)": 1, "[0.3-0.4)": 1, "[0.7-0.8)": 1, "[0.9-1.0]": 1}  # 2 eligible -> 1 kept
    picks = set()
    for seed in range(12):  # the seed decides which of the two 0.1 rows is kept; both happen
        run_balance(folders, tmp_path / f"s{seed}", "--max", "1", "--min", "0", "--seed", str(seed))
        rows = (tmp_path / f"s{seed}" / "text_part.jsonl").read_text().splitlines()
        picks.add(next(json.loads(r)["id"] for r in rows if json.loads(r)["score"] == 0.1))
    assert picks == {"r01", "r02"}


def test_custom_bins_and_a_short_bin_is_reported_not_padded(folders, tmp_path):
    rc, rep = run_balance(folders, tmp_path / "out", "--bins", "0", "0.5", "1", "--min", "4", "--max", "10")
    assert rc == 0
    assert [(b["bin"], b["eligible"], b["selected"], b["short"]) for b in rep["bins"]] == [
        ("[0.0-0.5)", 3, 3, True),  # r01, r02 (0.1), r16 (0.3): under --min 4, not duplicated
        ("[0.5-1.0]", 3, 3, True),  # r11 (0.7), r12 (0.9), r14 (1.0)
    ]


def test_one_judge_alone_has_no_disagreement_across_folders(folders, tmp_path):
    rc, rep = run_balance(folders[:1], tmp_path / "out", "--min", "0")
    assert rc == 0
    # without judge2: r03 has one rollout (eligible), r16 does not exist, r01 is 0.0; r10 still disagrees (K = 2)
    assert rep["rows"]["rejected"]["conflicting_rollout"] == 0 and rep["rows"]["rejected"]["disagreement"] == 1
    assert rep["rows"]["total"] == 15 and rep["rows"]["eligible"] == 6  # r01 r02 r03 r11 r12 r14
    assert rep["grid"]["0.0"]["eligible"] == 1 and rep["grid"]["0.7"]["eligible"] == 1  # r11 from (6 + 7) / 2 = 6.5


def test_a_tighter_tolerance_drops_more(folders, tmp_path):
    _, rep = run_balance(folders, tmp_path / "out", "--min", "0", "--agree-tol", "0.1")
    assert rep["rows"]["rejected"]["disagreement"] == 2  # r10 and now r01 (spread 0.2); r11 spreads 0.1


def test_bad_options_and_a_missing_folder_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["balance", "--annotations", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert main(["balance", "--annotations", str(tmp_path), "--out", str(out), "--bins", "0", "0.5"]) == 2
    assert main(["balance", "--annotations", str(tmp_path), "--out", str(out), "--min", "9", "--max", "3"]) == 2
    assert not out.exists()
    assert "no annotation folder" in capsys.readouterr().err


def test_nothing_selected_exits_1(tmp_path):
    folder = write_folder(tmp_path / "a", {"annotations-a.jsonl": [ann("r1", row_error="bad_image: x")]})
    rc, rep = run_balance([folder], tmp_path / "out", "--min", "0")
    assert rc == 1 and rep["rows"]["rejected"]["failed_annotation"] == 1 and rep["written"]["rows"] == 0
    assert not (tmp_path / "out" / "text_part.jsonl").exists()


# --- the pieces -----------------------------------------------------------------------------------------------


def test_label_is_the_mean_snapped_halves_up_and_disagreement_is_strict():
    assert snapped_mean([6, 7]) == 7 and snapped_mean([2, 3, 3]) == 3 and snapped_mean([0, 1]) == 1
    assert snapped_mean([4]) == 4 and snapped_mean([1, 2, 2, 2]) == 2  # 1.75 -> 2
    assert not disagrees([1, 3], 0.2) and disagrees([1, 4], 0.2) and not disagrees([0, 10], 1.0)
    assert not disagrees([9], 0.0)


def test_default_bins_are_the_papers_ten_with_a_closed_last_bin():
    assert bin_names(DEFAULT_EDGES)[0] == "[0.0-0.1)" and bin_names(DEFAULT_EDGES)[-1] == "[0.9-1.0]"
    assert [bin_of(t / 10, DEFAULT_EDGES) for t in range(11)] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9]
    edges = check_edges([0, 0.25, 1])
    assert bin_names(edges) == ["[0.0-0.25)", "[0.25-1.0]"] and bin_of(0.2, edges) == 0 and bin_of(0.3, edges) == 1
    for bad in ([0.1, 1], [0, 0.9], [0, 0.5, 0.5, 1], [0]):
        with pytest.raises(ValueError):
            check_edges(bad)


def test_reservoir_is_uniform_over_subsets():
    # k = 2 of 5 items: 10 subsets, each expected 3000 / 10 = 300 times over 3000 seeds
    counts = dict.fromkeys(combinations(range(5), 2), 0)
    for seed in range(3000):
        r = Reservoir(2, f"s{seed}")
        for i in range(5):
            r.offer(i, 100 + i, i)
        counts[tuple(k for k, _, _ in r.items())] += 1
    assert all(240 <= c <= 360 for c in counts.values()), counts


def test_reservoir_keeps_everything_under_k_and_its_items_sorted():
    r = Reservoir(10, "x")
    for i in (5, 3, 8):
        r.offer(i, i * 2, 1)
    assert r.items() == [(3, 6, 1), (5, 10, 1), (8, 16, 1)] and r.size == 3


def test_digest_set_finds_what_it_holds_across_merges():
    s = DigestSet(buffer=4)
    values = [(i * 0x9E3779B97F4A7C15) % 2**64 for i in range(50)]
    assert all(s.add(v) for v in values)
    assert not any(s.add(v) for v in values) and len(s) == 50
    assert 12345 not in s


def test_an_image_name_with_a_folder_part_is_missing_and_other_images_for_one_rid_conflict(tmp_path):
    (tmp_path / "secret.png").write_bytes(IMG)
    a = write_folder(tmp_path / "a", {"annotations-a.jsonl": [
        ann("r1", (0.5,), images=["../secret.png"], question="<image>Q1"),  # not a plain name -> image_missing
        ann("r2", (0.5,), images=[IMG_NAME], question="<image>Q2"),  # judge 2 saw another image -> conflict
    ]}, {IMG_NAME: IMG})  # fmt: skip
    b = write_folder(tmp_path / "b", {"annotations-b.jsonl": [
        ann("r2", (0.5,), images=["f" * 64 + ".png"], question="<image>Q2", judge="J2"),
    ]}, {"f" * 64 + ".png": IMG})  # fmt: skip
    rc, rep = run_balance([a, b], tmp_path / "out", "--min", "0")
    assert rc == 1  # nothing left
    assert rep["rows"]["rejected"]["image_missing"] == 1 and rep["rows"]["rejected"]["conflicting_rollout"] == 1
    assert not (tmp_path / "out" / "images").exists()
