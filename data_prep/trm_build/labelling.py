"""The labelling prompt of the annotation (paper Table 4) and reading a grid score out of the judge's reply.

The labelling template is a file of its own (``prompts/thinking_label.txt``), apart from the RL-time judge prompt
(``sophiavl.rewards.trm.prompts/thinking_judge.txt``): the large judge is asked for the score alone, on the grid
0, 0.1, ..., 1.0. Its format is the judge template's (a system message, a line ``---``, the user text with
``{question}`` and ``{response}``), so :func:`sophiavl.rewards.trm.prompt.load_template` reads it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sophiavl.data_prep.trm_build.annotation import GRID, on_grid

#: The packaged labelling template (``data_prep/trm_build/prompts/thinking_label.txt``).
DEFAULT_LABEL_TEMPLATE = "thinking_label.txt"

#: The eleven answers structured output allows: ``"0.0"``, ``"0.1"``, ..., ``"1.0"``.
GRID_CHOICES: tuple[str, ...] = tuple(f"{g:.1f}" for g in GRID)

# a number token: 1, 0.7, .7, 0.75, 75%, -0.2 (the percent sign is kept so that "70%" is seen as off the grid)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d+)?|\.\d+)%?(?![\w])")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class LabelTemplate:
    """Where the labelling template was read from (``path``, a real file) and the sha256 (hex) of its text."""

    path: str
    sha256: str


def label_template(path: str | None = None) -> LabelTemplate:
    """The labelling template: ``path`` None -> the packaged one; otherwise that file.

    The hash is of the file's bytes as stored (UTF-8), so two runs with the same template record the same hash.
    Raises ``FileNotFoundError`` when the file does not exist.
    """
    if path is None:
        file = Path(str(resources.files("sophiavl.data_prep.trm_build").joinpath("prompts", DEFAULT_LABEL_TEMPLATE)))
    else:
        file = Path(path).expanduser()
    data = file.read_bytes()
    return LabelTemplate(path=str(file), sha256=hashlib.sha256(data).hexdigest())


def parse_label(text: str | None) -> tuple[float | None, str | None]:
    """The grid score in the judge's reply ``text``, as ``(score, None)``, or ``(None, "<kind>: <detail>")``.

    Read in this order: the reply alone when it is a number (``"0.7"``, ``" 1 "``); else the content of the last
    ``<answer>...</answer>``; else the last number anywhere in the reply. The number must lie on the grid
    0.0, 0.1, ..., 1.0 (``"0.70"`` is 0.7; ``"0.75"``, ``"7"``, ``"70%"``, ``"-0.1"`` are not): a number off the
    grid is ``off_grid``, a reply with no number (or none at all) ``unparsable``. Never 0 for an unreadable reply.
    """
    if text is None or not text.strip():
        return None, "unparsable: empty reply"
    stripped = text.strip()
    answers = _ANSWER.findall(stripped)
    place = answers[-1] if answers else stripped
    numbers = _NUMBER.findall(place) or _NUMBER.findall(stripped)
    if not numbers:
        return None, f"unparsable: {_snippet(stripped)}"
    token = numbers[-1]
    if token.endswith("%"):
        return None, f"off_grid: {_snippet(stripped)}"
    value = float(token)
    if not on_grid(value):
        return None, f"off_grid: {_snippet(stripped)}"
    return round(value, 1), None


def _snippet(text: str, limit: int = 120) -> str:
    """``text`` as a short repr for an error message: its last ``limit`` characters, newlines as spaces."""
    tail = text if len(text) <= limit else "..." + text[-limit:]
    return repr(tail.replace("\n", " "))
