"""One judge's labels of one collected response: the line ``annotate`` writes and ``balance`` reads.

A line holds the rollout record it labels, the content-hash names of the row's images (stored once under the
annotation folder's ``images/``), which judge and which labelling prompt produced it, and the judge's K samples: a
score on the grid {0.0, 0.1, ..., 1.0} or None, the raw reply, and an error (``"<kind>: <detail>"``) for each. A row
that could not be sent at all (its prepared row is missing, its image does not decode) has ``row_error`` and no
samples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from sophiavl.rewards.collect import RECORD_VERSION, RolloutRecord

ANNOTATION_VERSION = 1
#: The label grid: 0.0, 0.1, ..., 1.0 (eleven values).
GRID: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))


def on_grid(value: float) -> bool:
    """True when ``value`` is one of the eleven grid values (within 1e-9)."""
    return math.isfinite(value) and any(abs(value - g) <= 1e-9 for g in GRID)


@dataclass(frozen=True)
class Annotation:
    """One (rollout, judge) label line; see the module docstring. ``scores``, ``raw`` and ``errors`` have one entry
    per judge sample (all three empty when ``row_error`` is set)."""

    rollout: RolloutRecord
    judge_model: str
    prompt_sha256: str
    images: list[str] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    raw: list[str | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    row_error: str | None = None

    @property
    def ok_scores(self) -> list[float]:
        """The samples that produced a score, in sample order."""
        return [s for s in self.scores if s is not None]

    def to_line(self) -> str:
        """The annotation as one JSON line, newline included."""
        # the fields in declaration order, as dataclasses.asdict lists them, without its deep copies (they cost more
        # than the rest of the line); the rollout as in its own line (RolloutRecord.to_line), without "v"
        rollout = {f.name: getattr(self.rollout, f.name) for f in fields(self.rollout)}
        if rollout["outcome"] is not None and not math.isfinite(rollout["outcome"]):
            rollout["outcome"] = None
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["rollout"] = rollout
        return json.dumps({"v": ANNOTATION_VERSION, **data}, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Annotation:
        """Validates one decoded line.

        Raises:
            ValueError: another version, a missing field, a rollout that is not a valid record, samples of unequal
                length, a score off the grid, or samples next to a ``row_error`` (the message names the field).
        """
        if data.get("v") != ANNOTATION_VERSION:
            raise ValueError(f"annotation version {data.get('v')!r}, expected {ANNOTATION_VERSION}")
        for name in ("rollout", "judge_model", "prompt_sha256", "images", "scores", "raw", "errors", "row_error"):
            if name not in data:
                raise ValueError(f"field {name!r} missing")
        if not isinstance(data["rollout"], dict):
            raise ValueError("field 'rollout' must be an object")
        rollout = RolloutRecord.from_dict({"v": RECORD_VERSION, **data["rollout"]})
        for name in ("judge_model", "prompt_sha256"):
            if not isinstance(data[name], str) or not data[name]:
                raise ValueError(f"field {name!r} must be a non-empty string")
        lists = {name: data[name] for name in ("images", "scores", "raw", "errors")}
        for name, value in lists.items():
            if not isinstance(value, list):
                raise ValueError(f"field {name!r} must be a list")
        if not all(isinstance(i, str) and i for i in lists["images"]):
            raise ValueError("field 'images' must hold file names")
        k = len(lists["scores"])
        if len(lists["raw"]) != k or len(lists["errors"]) != k:
            raise ValueError(
                f"fields 'scores', 'raw', 'errors' differ in length ({k}, {len(lists['raw'])}, {len(lists['errors'])})"
            )
        scores: list[float | None] = []
        for s in lists["scores"]:
            if s is None:
                scores.append(None)
            elif isinstance(s, bool) or not isinstance(s, (int, float)) or not on_grid(float(s)):
                raise ValueError(f"field 'scores' holds {s!r}, not a grid value or null")
            else:
                scores.append(round(float(s), 1))
        for name in ("raw", "errors"):
            if not all(v is None or isinstance(v, str) for v in lists[name]):
                raise ValueError(f"field {name!r} must hold strings or nulls")
        row_error = data["row_error"]
        if row_error is not None and (not isinstance(row_error, str) or k):
            raise ValueError("field 'row_error' must be null, or a string with no samples beside it")
        return cls(
            rollout=rollout,
            judge_model=data["judge_model"],
            prompt_sha256=data["prompt_sha256"],
            images=list(lists["images"]),
            scores=scores,
            raw=list(lists["raw"]),
            errors=list(lists["errors"]),
            row_error=row_error,
        )

    @classmethod
    def from_line(cls, line: str) -> Annotation:
        """Parses one JSON line; raises ``ValueError`` as :meth:`from_dict` (or on JSON that is not an object)."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"an annotation is a JSON object, not {type(data).__name__}")
        return cls.from_dict(data)
