"""Reading what a thinking reward model is evaluated on: held-out TRM SFT rows (pointwise) and VL-RewardBench pairs.

Both readers stream parquet in record batches and yield one item per row; a row that cannot be used becomes an item
with ``error`` set (counted and reported by the caller), never a silent skip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sophiavl.rewards.trm.inputs import image_payload, question_text
from sophiavl.rewards.trm.parse import parse_score
from sophiavl.rewards.trm.prompt import PromptTemplate, build_messages

from .metrics import on_grid

#: The image placeholder that ends the user turn of an image row (the TRM SFT rows' convention).
IMAGE_PLACEHOLDER = "<image>"
_PLACEHOLDER = re.compile(r"\{(question|response)\}")
_BATCH_ROWS = 64


@dataclass(frozen=True)
class PointwiseItem:
    """One held-out row: ``label`` on the grid, the (question, response, image) the judge is asked about, or
    ``error`` (a short reason) when the row cannot be used."""

    index: int
    row_id: str
    source: str
    label: float | None = None
    question: str = ""
    response: str = ""
    image: bytes | str | None = None
    error: str = ""


@dataclass(frozen=True)
class PairItem:
    """One VL-RewardBench pair: ``query`` (placeholders removed), the two ``responses``, ``better`` = index of the
    human-preferred one, the image bytes; or ``error`` when the row cannot be used."""

    index: int
    item_id: str
    query: str = ""
    responses: tuple[str, str] = ("", "")
    better: int = 0
    image: bytes | str | None = None
    error: str = ""


def split_rendered(template: PromptTemplate, text: str) -> tuple[str, str]:
    """The (question, response) that ``template.render`` turns into ``text``.

    Whatever split is returned, ``template.render(question, response) == text`` holds, so the judge's request carries
    exactly ``text``. Raises ``ValueError`` when ``text`` is not a rendering of ``template`` (another template, or a
    template that uses a placeholder twice).
    """
    names = _PLACEHOLDER.findall(template.user)
    if sorted(names) != ["question", "response"]:
        raise ValueError("the template must contain {question} and {response} exactly once each")
    head, middle, tail = _PLACEHOLDER.split(template.user)[::2]
    if not (text.startswith(head) and text.endswith(tail) and len(text) >= len(head) + len(middle) + len(tail)):
        raise ValueError("the user turn is not a rendering of the judge's prompt template")
    body = text[len(head) : len(text) - len(tail)]
    cut = body.find(middle)
    if cut < 0:
        raise ValueError("the user turn is not a rendering of the judge's prompt template")
    first, second = body[:cut], body[cut + len(middle) :]
    values = dict(zip(names, (first, second), strict=True))
    return values["question"], values["response"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):  # a list of parts: join the text ones
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, Mapping))
    raise ValueError(f"message content of type {type(content).__name__}")


def request_turns(template: PromptTemplate, question: str, response: str) -> list[tuple[str, str]]:
    """The (role, text) turns of the request the judge sends for ``question`` and ``response``, image left out:
    built by the judge's own :func:`~sophiavl.rewards.trm.prompt.build_messages`."""
    turns = []
    for message in build_messages(template, question, response, None):
        content = message["content"]
        turns.append((message["role"], content if isinstance(content, str) else _text(content)))
    return turns


def pointwise_item(index: int, row: Mapping[str, Any], template: PromptTemplate) -> PointwiseItem:
    """A :class:`PointwiseItem` from one TRM SFT row (``messages`` [system,] user, assistant; ``images``;
    ``extra_info`` with ``id`` and ``data_source``).

    The assistant turn holds the label, a score on the grid 0, 0.1, ..., 1. The question and response are recovered
    from the user turn, and the row is used only when the judge's request for them (:func:`request_turns`) carries
    exactly the row's system and user text, the user text followed by ``<image>`` exactly when the row has its one
    image; any other row is returned with ``error`` set.
    """
    extra = row.get("extra_info") or {}
    row_id = str(extra.get("id", index))
    source = str(extra.get("data_source") or "unknown")
    base = {"index": index, "row_id": row_id, "source": source}
    try:
        messages = list(row["messages"])
        roles = [m["role"] for m in messages]
        if roles not in (["system", "user", "assistant"], ["user", "assistant"]):
            raise ValueError(f"expected turns [system,] user, assistant; got {roles}")
        turns = [(m["role"], _text(m["content"])) for m in messages]
        label = parse_score(turns[-1][1])
        if label is None or not on_grid(label):
            raise ValueError(f"the assistant turn holds no grid score: {turns[-1][1][:60]!r}")
        user = turns[-2][1]
        images = list(row.get("images") or [])
        has_image = user.endswith(IMAGE_PLACEHOLDER)
        if has_image:
            user = user[: -len(IMAGE_PLACEHOLDER)]
        if IMAGE_PLACEHOLDER in user or len(images) != int(has_image):
            ending = "ends with" if has_image else "does not end with"
            raise ValueError(f"{len(images)} image(s), and the user turn {ending} <image> (expected 1 or 0)")
        question, response = split_rendered(template, user)
        if request_turns(template, question, response) != [*turns[:-2], ("user", user)]:
            raise ValueError("the judge's request for this row would differ from the row's prompt")
        image = image_payload(images[0]) if images else None
    except (KeyError, TypeError, ValueError, OSError) as exc:
        return PointwiseItem(**base, error=f"{type(exc).__name__}: {exc}")
    return PointwiseItem(**base, label=label, question=question, response=response, image=image)


#: Columns each reader needs.
POINTWISE_COLUMNS = ("messages", "images")
PAIR_COLUMNS = ("id", "query", "response", "human_ranking", "image")


def open_parquet(path: str | Path, required: tuple[str, ...]) -> int:
    """Checks that ``path`` is a parquet file with the ``required`` columns; returns its row count (from the
    footer). Raises ``ValueError`` naming the missing columns (``pyarrow``'s own ``ArrowInvalid``, a ``ValueError``,
    for a file that is not parquet)."""
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; it has {names}")
    return parquet.metadata.num_rows


def _rows(path: str | Path, columns: list[str]) -> Iterator[dict[str, Any]]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        yield from batch.to_pylist()


def read_pointwise(path: str | Path, template: PromptTemplate) -> Iterator[PointwiseItem]:
    """Streams the held-out rows of a TRM SFT parquet file as :class:`PointwiseItem` (row order kept)."""
    names = pq.ParquetFile(path).schema_arrow.names
    columns = [*POINTWISE_COLUMNS] + (["extra_info"] if "extra_info" in names else [])
    for index, row in enumerate(_rows(path, columns)):
        yield pointwise_item(index, row, template)


def pair_item(index: int, row: Mapping[str, Any]) -> PairItem:
    """A :class:`PairItem` from one VL-RewardBench row (``id``, ``query``, ``response`` [2], ``human_ranking`` [2],
    ``image`` {bytes, path}). ``human_ranking`` gives each response its rank, 0 for the better one."""
    item_id = str(row.get("id"))
    try:
        responses = list(row["response"])
        ranking = [int(r) for r in row["human_ranking"]]
        if len(responses) != 2 or not all(isinstance(r, str) for r in responses):
            raise ValueError(f"expected two text responses, got {len(responses)}")
        if sorted(ranking) != [0, 1]:
            raise ValueError(f"human_ranking must rank the two responses 0 and 1, got {ranking}")
        image = row.get("image")
        if not isinstance(image, Mapping):
            raise ValueError("no image")
        payload = image_payload(image)
        query = question_text(str(row["query"]))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        return PairItem(index=index, item_id=item_id, error=f"{type(exc).__name__}: {exc}")
    return PairItem(
        index=index,
        item_id=item_id,
        query=query,
        responses=(responses[0], responses[1]),
        better=ranking.index(0),
        image=payload,
    )


def read_pairs(path: str | Path) -> Iterator[PairItem]:
    """Streams VL-RewardBench pairs from its test parquet file (row order kept)."""
    for index, row in enumerate(_rows(path, [*PAIR_COLUMNS])):
        yield pair_item(index, row)


def find_test_parquet(folder: Path) -> Path:
    """The VL-RewardBench test file in a dataset folder (the hub layout ``data/test-*.parquet``, or any
    ``test-*.parquet`` below). Raises ``FileNotFoundError`` when there is none, ``ValueError`` when there are
    several."""
    found = sorted(folder.glob("data/test-*.parquet")) or sorted(folder.rglob("test-*.parquet"))
    if not found:
        raise FileNotFoundError(f"no test-*.parquet under {folder}")
    if len(found) > 1:
        raise ValueError(f"several test parquet files under {folder}: {[str(p) for p in found]}")
    return found[0]
