"""The before/after picture of balancing (like the paper's Fig. 2, right): per score bin, the eligible rows (before
sampling) and the selected rows (after), as side-by-side bars, drawn with Pillow into a PNG.

The drawing uses only Pillow's built-in bitmap font and integer coordinates, so the same counts give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BEFORE = (170, 170, 170)
AFTER = (31, 119, 180)
INK = (40, 40, 40)
WIDTH, HEIGHT = 960, 480
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 50, 60
_TICKS = 5


def _nice_top(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^k at or above ``value`` (at least 1), for the y axis."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def draw_histogram(path: Path, names: list[str], before: list[int], after: list[int], title: str) -> None:
    """Writes the PNG at ``path``: one pair of bars per bin ``names[i]`` with heights ``before[i]`` (grey) and
    ``after[i]`` (blue), a y axis with counts, a legend and ``title``. All lists have one entry per bin."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    top = _nice_top(max([*before, *after, 1]))
    plot_h = HEIGHT - _TOP - _BOTTOM
    plot_w = WIDTH - _LEFT - _RIGHT
    base = HEIGHT - _BOTTOM
    d.text((_LEFT, 12), title, fill=INK, font=font)
    ticks = min(_TICKS, top)  # top is 1, 2 or a multiple of 5: whole-number ticks
    for t in range(ticks + 1):
        y = base - plot_h * t // ticks
        d.line([(_LEFT - 4, y), (WIDTH - _RIGHT, y)], fill=(225, 225, 225) if t else INK)
        label = str(top * t // ticks)
        d.text((_LEFT - 8 - round(d.textlength(label, font=font)), y - 6), label, fill=INK, font=font)
    n = max(len(names), 1)
    slot = plot_w // n
    bar = max(slot * 2 // 5, 1)
    for i, name in enumerate(names):
        x0 = _LEFT + i * slot + (slot - 2 * bar) // 2
        for j, (value, color) in enumerate(((before[i], BEFORE), (after[i], AFTER))):
            h = plot_h * value // top
            if h:
                d.rectangle([x0 + j * bar, base - h, x0 + (j + 1) * bar - 1, base - 1], fill=color)
        d.text(
            (_LEFT + i * slot + (slot - round(d.textlength(name, font=font))) // 2, base + 8), name, fill=INK, font=font
        )
    lx = WIDTH - _RIGHT - 250
    for j, (text, color) in enumerate((("before (eligible)", BEFORE), ("after (selected)", AFTER))):
        d.rectangle([lx + j * 130, 14, lx + j * 130 + 12, 26], fill=color)
        d.text((lx + j * 130 + 18, 14), text, fill=INK, font=font)
    d.text((_LEFT + plot_w // 2 - 40, HEIGHT - 24), "score bin", fill=INK, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
