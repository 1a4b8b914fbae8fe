"""One collected rollout response: what annotating it needs, and nothing that can be looked up again.

The row's identity is ``(split, index)`` of the prepared parquet (``extra_info.split`` and ``extra_info.index``, as
written by ``sophiavl.data_prep``); ``problem_id`` is the source dataset's id, kept to cross-check the lookup. The
image is not stored: annotation reads it from the prepared parquet by that identity, never by question text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

#: Written in every line as ``"v"``; a reader refuses lines of another version.
RECORD_VERSION = 1
SOURCES = ("grpo", "offline")


@dataclass(frozen=True)
class RolloutRecord:
    """One response of the policy to one prepared row.

    Attributes:
        rid: unique id of this record across all shards of a collection (the collector writes
            ``"<run tag>-<pid>-<seq>"``; an offline import writes ``"<file stem>:<line number>"``).
        split: ``extra_info.split`` of the prepared row (``"train"`` or ``"val"``).
        index: ``extra_info.index`` of the prepared row (0-based within its split, >= 0).
        problem_id: the source dataset's id of the row (``extra_info.problem_id``); may be empty.
        data_source: the row's ``data_source``.
        problem_type: the row's ``problem_type`` (``numerical``, ``multiple choice``, ``OCR``, ...).
        question: the question text (``extra_info.question``, without the prompt template).
        response: the decoded response, special tokens removed.
        outcome: ``Ro`` in [0, 1], or None when not scored (an offline import without scoring).
        step: the trainer's global step (1-based), or None (offline).
        group: the rollout group's id (verl's ``uid``: the responses to one prompt share it), or None (offline).
        source: ``"grpo"`` (collected during a verl run) or ``"offline"`` (imported from a JSONL).
    """

    rid: str
    split: str
    index: int
    problem_id: str
    data_source: str
    problem_type: str
    question: str
    response: str
    outcome: float | None
    step: int | None
    group: str | None
    source: str

    def to_line(self) -> str:
        """The record as one JSON line (with ``"v"``), newline included; NaN outcomes are written as null."""
        data = {name: getattr(self, name) for name in _FIELDS}  # shallow: asdict's deep copy doubles the cost
        if data["outcome"] is not None and not math.isfinite(data["outcome"]):
            data["outcome"] = None
        return json.dumps({"v": RECORD_VERSION, **data}, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutRecord:
        """Validates one decoded line.

        Raises:
            ValueError: another record version, a missing field, or a field of the wrong type or range (the message
                names the field).
        """
        if data.get("v") != RECORD_VERSION:
            raise ValueError(f"record version {data.get('v')!r}, expected {RECORD_VERSION}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                raise ValueError(f"field {f.name!r} missing")
            values[f.name] = data[f.name]
        for name in ("rid", "split", "problem_id", "data_source", "problem_type", "question", "response", "source"):
            if not isinstance(values[name], str):
                raise ValueError(f"field {name!r} must be a string, not {type(values[name]).__name__}")
        if not values["rid"]:
            raise ValueError("field 'rid' is empty")
        if values["source"] not in SOURCES:
            raise ValueError(f"field 'source' must be one of {SOURCES}, not {values['source']!r}")
        index = values["index"]
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"field 'index' must be an integer >= 0, not {index!r}")
        outcome = values["outcome"]
        if outcome is not None:
            if isinstance(outcome, bool) or not isinstance(outcome, (int, float)) or not 0.0 <= outcome <= 1.0:
                raise ValueError(f"field 'outcome' must be null or a number in [0, 1], not {outcome!r}")
            values["outcome"] = float(outcome)
        step = values["step"]
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
            raise ValueError(f"field 'step' must be null or an integer >= 0, not {step!r}")
        if values["group"] is not None and not isinstance(values["group"], str):
            raise ValueError(f"field 'group' must be null or a string, not {values['group']!r}")
        return cls(**values)

    @classmethod
    def from_line(cls, line: str) -> RolloutRecord:
        """Parses one JSON line. Raises ``ValueError`` on JSON that does not decode to an object, or as
        :meth:`from_dict`."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"a record is a JSON object, not {type(data).__name__}")
        return cls.from_dict(data)


#: The record's field names, in line order.
_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RolloutRecord))
