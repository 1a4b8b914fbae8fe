"""Generates the embedded Thinking-156k sample (60 records) in a released-like layout.

    python -m sophiavl.data_prep.sample.make_trm_sample [--out DIR]     # default: data_prep/sample/trm_data

Layout written::

    json/multimodal_part.json      JSON array, 40 image rows: id, problem, response, score (number), path,
                                   data_source (paths like ./OCR/TextOCR/<hash>.png, as in the release)
    text_part.jsonl                JSON lines at the root, 20 text-only rows: question, response, score (a numeric
                                   string), source; no id field (the record position is the id)
    OCR/...  General/...           unpacked PNGs
    Chart.zip                      members Chart/..., still zipped

Every score level 0.0, 0.1, ..., 1.0 occurs among the image rows and again among the text rows. Each response is
written to deserve its score: sound and concise near 1.0, correct but padded or repetitive in the middle, a wrong
step below 0.5, and no usable reasoning near 0.0. Four distinct questions share one image (``General/shared``),
as the release does on a larger scale; two questions carry a literal ``<image>`` and one response does, as the
converter must strip them. The output is a pure function of this script and the Pillow version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import zipfile
from pathlib import Path

from .make_sample import COLORS, SHAPES, WORDS, _bar_chart, _png, _scatter, _scene, _word

DEFAULT_OUT = Path(__file__).resolve().parent / "trm_data"
SEED = 20250524
LEVELS = [round(0.1 * k, 1) for k in range(11)]


def response_for(score: float, steps: list[str], answer: str, wrong_step: str, wrong_answer: str) -> str:
    """A response whose reasoning deserves ``score``: the quality falls with the score, level by level."""
    think = " ".join(steps)
    if score >= 0.9:
        body = think if score == 1.0 else think + " So the result follows."
        return f"<think>{body}</think><answer>{answer}</answer>"
    if score >= 0.7:
        return f"<think>{think} Let me check again. {steps[-1]}</think><answer>{answer}</answer>"
    if score >= 0.5:
        padding = " ".join(steps + steps) + " I will repeat this to be sure. " + " ".join(steps)
        return f"<think>{padding}</think><answer>{answer}</answer>"
    if score >= 0.3:
        return f"<think>{steps[0]} {wrong_step}</think><answer>{wrong_answer}</answer>"
    if score >= 0.1:
        return f"<think>{wrong_step} Das ist klar, also fertig.</think><answer>{wrong_answer}</answer>"
    return f"<answer>{wrong_answer}</answer>"


def _score_cycle(n: int, offset: int) -> list[float]:
    return [LEVELS[(i + offset) % len(LEVELS)] for i in range(n)]


def build(out: Path) -> dict[str, int]:
    """Writes the sample under ``out`` (replacing it); returns ``{"image": n, "text": n}``."""
    rng = random.Random(SEED)
    if out.exists():
        shutil.rmtree(out)
    (out / "json").mkdir(parents=True)
    files: dict[str, bytes] = {}  # relative path -> PNG bytes (unpacked, or zipped when under Chart/)
    image_rows: list[dict] = []

    def add_image(rel: str, png: bytes) -> str:
        files[rel] = png
        return "./" + rel

    # OCR: a word to transcribe; hashed file names as in the release's ./OCR/TextOCR/<hash>.png
    for k, word in enumerate(WORDS[:12]):
        png = _png(_word(word, rng))
        path = add_image(f"OCR/TextOCR/{hashlib.sha1(png).hexdigest()[:16]}.png", png)
        wrong = word[::-1]
        steps = [f"The image shows one word in dark letters: {word}.", f"Reading it letter by letter gives {word}."]
        q = f"What word is written in the image?{' Answer in lower case.' if k % 2 else ''}"
        image_rows.append(dict(problem=("<image>\n" + q) if k == 0 else q, path=path, data_source="TextOCR",
                               steps=steps, answer=word, wrong_step=f"The word reads backwards as {wrong}.",
                               wrong_answer=wrong))  # fmt: skip
    # Chart (zipped): the tallest bar
    for k in range(12):
        labels = ["A", "B", "C", "D", "E"][: 3 + k % 3]
        values = rng.sample(range(1, 11), len(labels))
        png = _png(_bar_chart(labels, values, COLORS[list(COLORS)[k % len(COLORS)]]))
        path = add_image(f"Chart/bars/bars_{k:03d}.png", png)
        top = labels[values.index(max(values))]
        low = labels[values.index(min(values))]
        steps = [f"The bars have heights {', '.join(f'{a}={v}' for a, v in zip(labels, values, strict=True))}.",
                 f"The largest value is {max(values)}, which belongs to bar {top}."]  # fmt: skip
        image_rows.append(dict(problem="Which bar in the chart is the tallest?", path=path, data_source="ChartQA",
                               steps=steps, answer=top, wrong_step=f"Bar {low} looks tallest at first glance.",
                               wrong_answer=low))  # fmt: skip
    # General: count shapes of one colour
    for k in range(12):
        color = list(COLORS)[k % len(COLORS)]
        shape = SHAPES[k % len(SHAPES)]
        n = 1 + k % 4
        others = [(SHAPES[(k + 1) % 3], list(COLORS)[(k + 2) % len(COLORS)]) for _ in range(2)]
        png = _png(_scatter(rng, [(shape, COLORS[color])] * n + [(s, COLORS[c]) for s, c in others]))
        path = add_image(f"General/shapes/shapes_{k:03d}.png", png)
        steps = [f"I look for {color} {shape}s and skip the other shapes.", f"Counting them gives {n}."]
        image_rows.append(dict(problem=f"How many {color} {shape}s are in the picture?", path=path,
                               data_source="CLEVR-like", steps=steps, answer=str(n),
                               wrong_step=f"Counting every shape gives {n + 2}.", wrong_answer=str(n + 2)))  # fmt: skip
    # four distinct questions about one shared image (the release's known data bug, in miniature)
    shared = add_image("General/shared/scene_night_house.png", _png(_scene("house", True, "red")))
    for problem, answer, wrong in (
        ("Is it day or night in the picture?", "night", "day"),
        ("What colour is the house?", "red", "blue"),
        ("<image>What object stands on the grass?", "a house", "a car"),
        ("What shines in the sky?", "the moon", "the sun"),
    ):
        steps = ["The sky is dark with a crescent moon, and a red house stands on the grass.", f"So: {answer}."]
        image_rows.append(dict(problem=problem, path=shared, data_source="ScienceQA", steps=steps, answer=answer,
                               wrong_step=f"It looks like {wrong} to me.", wrong_answer=wrong))  # fmt: skip

    records = []
    for i, (row, score) in enumerate(zip(image_rows, _score_cycle(len(image_rows), 0), strict=True)):
        response = response_for(score, row["steps"], row["answer"], row["wrong_step"], row["wrong_answer"])
        if i == 1:
            response = response.replace("<think>", "<think>Looking at <image>: ", 1)
        records.append({"id": f"mm-{i:04d}", "problem": row["problem"], "response": response,
                        "score": score, "path": row["path"], "data_source": row["data_source"]})  # fmt: skip
    (out / "json" / "multimodal_part.json").write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")

    text = []
    for i, score in enumerate(_score_cycle(20, 5)):
        a, b = 3 + i, 7 + 2 * i
        steps = [f"I need {a} times {b}.", f"{a} * {b} = {a * b}."]
        response = response_for(score, steps, str(a * b), f"{a} * {b} = {a * b + a}.", str(a * b + a))
        text.append({"question": f"Compute {a} times {b}.", "response": response, "score": f"{score:.1f}",
                     "source": "MetaMathQA" if i % 2 else "LIMO"})  # fmt: skip
    (out / "text_part.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in text))

    with zipfile.ZipFile(out / "Chart.zip", "w", zipfile.ZIP_STORED) as zf:
        for rel, data in sorted(files.items()):
            if rel.startswith("Chart/"):
                zf.writestr(zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0)), data)
    for rel, data in sorted(files.items()):
        if not rel.startswith("Chart/"):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
    return {"image": len(records), "text": len(text)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (replaced)")
    counts = build(ap.parse_args(argv).out)
    print(f"wrote {counts['image']} image rows and {counts['text']} text-only rows")


if __name__ == "__main__":
    main()
