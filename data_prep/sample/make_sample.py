"""Generates the embedded sample dataset (100 records) in SophiaVL-R1-130k's released layout.

    python -m sophiavl.data_prep.sample.make_sample [--out DIR]     # default: data_prep/sample/data

Layout written::

    json/math.json  json/chart.json  json/ocr.json  json/knowledge.json   (JSON arrays)
    json/general.jsonl                                                     (JSON lines)
    Math/...  OCR/...  Knowledge/...  General/...                          (unpacked PNGs)
    Chart.zip                                                              (members Chart/..., still zipped)

Every question can be answered by looking at its image (count shapes, read a bar, transcribe a word, name a
colour or a shape, describe a small scene) or, for the text-only rows, by arithmetic or common knowledge. The
output is a pure function of this script and the Pillow version: a seeded RNG, Pillow's built-in font, PNGs
without timestamps, and a zip with fixed member dates.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DEFAULT_OUT = Path(__file__).resolve().parent / "data"
SEED = 20250523
SIZE = 224

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 170),
    "orange": (240, 130, 20),
}
SHAPES = ("circle", "square", "triangle")
WORDS = (
    "river", "lantern", "orbit", "pepper", "window", "garden", "silver", "planet", "candle", "harbor", "meadow",
    "violet", "copper", "thunder", "pencil", "bridge", "marble", "falcon", "compass", "harvest",
)  # fmt: skip


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _draw_shape(d: ImageDraw.ImageDraw, shape: str, cx: int, cy: int, r: int, color) -> None:
    if shape == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif shape == "square":
        d.rectangle((cx - r, cy - r, cx + r, cy + r), fill=color)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)


def _scatter(rng: random.Random, items: list[tuple[str, tuple]], r: int = 16) -> Image.Image:
    """Places shapes on a 4x4 grid of cells (one per cell, jittered), so none overlap."""
    img = Image.new("RGB", (SIZE, SIZE), "white")
    d = ImageDraw.Draw(img)
    cells = rng.sample(range(16), len(items))
    for (shape, color), cell in zip(items, cells, strict=True):
        cx = 28 + (cell % 4) * 56 + rng.randint(-6, 6)
        cy = 28 + (cell // 4) * 56 + rng.randint(-6, 6)
        _draw_shape(d, shape, cx, cy, r, color)
    return img


def _bar_chart(labels: list[str], values: list[int], color) -> Image.Image:
    img = Image.new("RGB", (280, SIZE), "white")
    d = ImageDraw.Draw(img)
    font = _font(14)
    base, top, left = 190, 20, 40
    d.line((left, top, left, base), fill="black")
    d.line((left, base, 270, base), fill="black")
    for tick in range(0, 11, 2):
        y = base - (base - top) * tick / 10
        d.line((left - 4, y, left, y), fill="black")
        d.text((left - 8, y), str(tick), fill="black", font=font, anchor="rm")
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x0 = left + 12 + i * 45
        d.rectangle((x0, base - (base - top) * v / 10, x0 + 28, base), fill=color)
        d.text((x0 + 14, base + 12), label, fill="black", font=font, anchor="mm")
        d.text((x0 + 14, base - (base - top) * v / 10 - 8), str(v), fill="black", font=font, anchor="mm")
    return img


def _word(word: str, rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (256, 96), (250, 248, 240))
    d = ImageDraw.Draw(img)
    d.text((128 + rng.randint(-10, 10), 48 + rng.randint(-6, 6)), word, fill=(20, 20, 20), font=_font(36), anchor="mm")
    return img


def _scene(obj: str, night: bool, color_name: str) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), (20, 24, 60) if night else (150, 200, 250))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 170, SIZE, SIZE), fill=(70, 140, 60))
    if night:
        d.ellipse((160, 20, 200, 60), fill=(240, 240, 210))
        d.ellipse((172, 14, 212, 54), fill=(20, 24, 60))  # crescent
    else:
        d.ellipse((160, 20, 204, 64), fill=(250, 210, 40))
    c = COLORS[color_name]
    if obj == "house":
        d.rectangle((60, 110, 140, 175), fill=c)
        d.polygon([(50, 110), (100, 70), (150, 110)], fill=(110, 60, 40))
        d.rectangle((90, 140, 110, 175), fill=(60, 40, 20))
    elif obj == "tree":
        d.rectangle((92, 120, 108, 175), fill=(110, 70, 30))
        d.ellipse((60, 60, 140, 135), fill=c)
    else:  # car
        d.rectangle((50, 130, 170, 160), fill=c)
        d.rectangle((80, 108, 140, 132), fill=c)
        d.ellipse((62, 150, 86, 174), fill="black")
        d.ellipse((134, 150, 158, 174), fill="black")
    return img


def _mc(options: list[str], correct: str) -> tuple[list[str], str]:
    letters = "ABCD"
    return [f"{letters[i]}. {o}" for i, o in enumerate(options)], letters[options.index(correct)]


def _record(pid, problem, ptype, answer, source, path: str | list[str] | None = None, options=None) -> dict:
    """One record in the released format; ``path`` is one image path, a list of them, or None (text-only)."""
    return {
        "problem_id": pid,
        "problem": problem,
        "data_type": "image" if path else "text",
        "problem_type": ptype,
        "options": options or [],
        "process": "",
        "solution": f"<answer>{answer}</answer>",
        "path": path or "",
        "data_source": source,
    }


def build(out: Path) -> dict[str, int]:
    """Writes the sample under ``out`` (emptied first); returns the number of records per subset."""
    rng = random.Random(SEED)
    if out.exists():
        shutil.rmtree(out)
    (out / "json").mkdir(parents=True)
    files: dict[str, bytes] = {}  # relative path -> bytes
    subsets: dict[str, list[dict]] = {s: [] for s in ("math", "chart", "ocr", "knowledge", "general")}
    colors = list(COLORS)

    # math: count shapes (numerical), most frequent shape (multiple choice), two-image totals, text-only arithmetic
    m = subsets["math"]
    for k in range(16):
        target = SHAPES[k % 3]
        n_target = rng.randint(1, 6)
        others = [(rng.choice([s for s in SHAPES if s != target]), COLORS[rng.choice(colors)]) for _ in range(3)]
        items = [(target, COLORS[rng.choice(colors)]) for _ in range(n_target)] + others
        rng.shuffle(items)
        rel = f"Math/shapes/count_{k:03d}.png"
        files[rel] = _png(_scatter(rng, items))
        q = f"How many {target}s are in the picture?"
        m.append(_record(len(m) + 1, q, "numerical", n_target, "sample-shapes", "./" + rel))
    for k in range(6):
        counts = dict(zip(SHAPES, rng.sample([1, 2, 3, 4, 5], 3), strict=True))
        items = [(s, COLORS[rng.choice(colors)]) for s, n in counts.items() for _ in range(n)]
        rng.shuffle(items)
        rel = f"Math/shapes/most_{k:03d}.png"
        files[rel] = _png(_scatter(rng, items))
        opts, letter = _mc(["circle", "square", "triangle", "star"], max(counts, key=counts.get))
        q = "Which kind of shape appears most often in the picture?"
        m.append(_record(len(m) + 1, q, "multiple choice", letter, "sample-shapes", "./" + rel, opts))
    for k in range(4):
        a, b = rng.randint(1, 5), rng.randint(1, 5)
        paths = []
        for j, n in enumerate((a, b)):
            rel = f"Math/pairs/pair_{k:03d}_{j}.png"
            files[rel] = _png(_scatter(rng, [("circle", COLORS["blue"])] * n))
            paths.append("./" + rel)
        q = "How many blue circles are there in the two pictures together?"
        m.append(_record(len(m) + 1, q, "numerical", a + b, "sample-shapes", paths))
    for _ in range(8):
        a, b = rng.randint(3, 12), rng.randint(2, 9)
        q = f"A box holds {a} pencils. How many pencils are there in {b} such boxes?"
        m.append(_record(len(m) + 1, q, "numerical", a * b, "sample-arith"))

    # chart (zipped): read one bar (numerical), find the tallest bar (multiple choice)
    c = subsets["chart"]
    for k in range(18):
        labels = ["Mon", "Tue", "Wed", "Thu", "Fri"]
        values = rng.sample(range(1, 11), 5)
        rel = f"Chart/bars/bar_{k:03d}.png"
        files[rel] = _png(_bar_chart(labels, values, COLORS[colors[k % len(colors)]]))
        if k < 10:
            i = rng.randrange(5)
            q = f"In the bar chart, what is the value of the bar for {labels[i]}?"
            c.append(_record(len(c) + 1, q, "numerical", values[i], "sample-bars", "./" + rel))
        else:
            opts, letter = _mc(labels[:4], labels[values.index(max(values[:4]))])
            q = "Among Mon, Tue, Wed and Thu, which day has the tallest bar?"
            c.append(_record(len(c) + 1, q, "multiple choice", letter, "sample-bars", "./" + rel, opts))

    # ocr: transcribe a rendered word
    o = subsets["ocr"]
    for k in range(18):
        word = WORDS[k % len(WORDS)] if k < len(WORDS) else rng.choice(WORDS)
        rel = f"OCR/words/word_{k:03d}.png"
        files[rel] = _png(_word(word, rng))
        o.append(_record(len(o) + 1, "What word is written in the image?", "OCR", word, "sample-words", "./" + rel))

    # knowledge: colour of the single triangle (multiple choice); text-only facts ("text")
    kn = subsets["knowledge"]
    for k in range(8):
        tri = colors[k % len(colors)]
        others = [(rng.choice(["circle", "square"]), COLORS[rng.choice(colors)]) for _ in range(3)]
        items = [("triangle", COLORS[tri])] + others
        rng.shuffle(items)
        rel = f"Knowledge/figures/triangle_{k:03d}.png"
        files[rel] = _png(_scatter(rng, items, r=20))
        choices = [tri] + rng.sample([x for x in colors if x != tri], 3)
        rng.shuffle(choices)
        opts, letter = _mc(choices, tri)
        q = "What colour is the triangle in the figure?"
        kn.append(_record(len(kn) + 1, q, "multiple choice", letter, "sample-figures", "./" + rel, opts))
    facts = [
        ("What is the name of a polygon with three sides?", "triangle"),
        ("What is the name of a polygon with four equal sides and four right angles?", "square"),
        ("Which colour do you get by mixing blue and yellow paint?", "green"),
        ("Which colour do you get by mixing red and yellow paint?", "orange"),
        ("What shape is a full moon as seen from Earth?", "circle"),
        ("How many sides does a hexagon have? Answer with a word.", "six"),
    ]
    for q, a in facts:
        kn.append(_record(len(kn) + 1, q, "text", a, "sample-facts"))

    # general (JSON lines): describe a scene (free-form), name its main object ("text")
    g = subsets["general"]
    for k in range(16):
        obj = ("house", "tree", "car")[k % 3]
        night = rng.random() < 0.5
        color = rng.choice(["red", "blue", "yellow", "orange"] if obj != "tree" else ["green", "orange"])
        rel = f"General/scenes/scene_{k:03d}.png"
        files[rel] = _png(_scene(obj, night, color))
        if k < 10:
            sky = "at night under a crescent moon" if night else "on a sunny day"
            q = "Describe the scene in one short phrase."
            article = "an" if color[0] in "aeiou" else "a"
            g.append(_record(len(g) + 1, q, "free-form", f"{article} {color} {obj} {sky}", "sample-scenes", "./" + rel))
        else:
            q = "What is the main object in the picture? Answer with one word."
            g.append(_record(len(g) + 1, q, "text", obj, "sample-scenes", "./" + rel))

    for rel, data in files.items():
        if not rel.startswith("Chart/"):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
    with zipfile.ZipFile(out / "Chart.zip", "w", zipfile.ZIP_STORED) as zf:
        for rel in sorted(r for r in files if r.startswith("Chart/")):
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[rel])
    for name, recs in subsets.items():
        if name == "general":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
            (out / "json" / "general.jsonl").write_text(text, encoding="utf-8")
        else:
            (out / "json" / f"{name}.json").write_text(json.dumps(recs, indent=1) + "\n", encoding="utf-8")
    return {name: len(recs) for name, recs in subsets.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder, emptied first (default {DEFAULT_OUT})")
    counts = build(Path(ap.parse_args(argv).out))
    print(f"wrote {sum(counts.values())} records: {counts}")


if __name__ == "__main__":
    main()
