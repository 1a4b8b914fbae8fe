"""The annotation line: round trip, the grid, and what a reader refuses."""

from __future__ import annotations

import json

import pytest

from sophiavl.data_prep.trm_build.annotation import GRID, Annotation, on_grid
from sophiavl.rewards.collect import RolloutRecord

ROLLOUT = RolloutRecord(
    "r-0", "train", 5, "p-5", "Math", "numerical", "q", "<think>a</think><answer>1</answer>", 1.0, 3, "g", "grpo"
)


def _line(**changes) -> dict:
    a = Annotation(ROLLOUT, "judge", "f" * 64, ["ab.png"], [0.7, None], ["0.7", "hmm"], [None, "off_grid: hmm"])
    data = json.loads(a.to_line())
    data.update(changes)
    return data


def test_the_grid_is_the_eleven_tenths():
    assert GRID == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert on_grid(0.3) and on_grid(0.1 + 0.2) and not on_grid(0.35) and not on_grid(float("nan"))


def test_a_line_round_trips_and_keeps_only_the_scores_that_came():
    a = Annotation.from_dict(_line())
    assert a.rollout == ROLLOUT and a.ok_scores == [0.7] and a.errors == [None, "off_grid: hmm"]
    assert Annotation.from_line(a.to_line()) == a


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"v": 9}, "version 9"),
        ({"scores": [0.75, None]}, "not a grid value"),
        ({"scores": [0.7]}, "differ in length"),
        ({"row_error": "bad_image: x"}, "row_error"),
        ({"judge_model": ""}, "judge_model"),
        ({"rollout": {"rid": "r"}}, "missing"),
        ({"images": [""]}, "images"),
    ],
)
def test_a_bad_line_is_refused_by_field(changes, message):
    with pytest.raises(ValueError, match=message):
        Annotation.from_dict(_line(**changes))


def test_a_row_error_stands_alone():
    a = Annotation.from_dict(_line(scores=[], raw=[], errors=[], images=[], row_error="missing_row: train/5"))
    assert a.row_error == "missing_row: train/5" and a.ok_scores == []
