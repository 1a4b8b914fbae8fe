"""The Thinking-156k conversion's counts: :class:`~sophiavl.data_prep.report.Report` plus score histograms, the
text-only share, the field names used per record file and the images shared by many questions."""

from __future__ import annotations

from collections import Counter, defaultdict

from sophiavl.data_prep.report import Report

LEVELS = tuple(f"{k / 10:.1f}" for k in range(11))  # "0.0" ... "1.0"
SPLITS = ("train", "val")


class TrmReport(Report):
    """Adds, over the written rows: ``score_histogram`` per split, ``score_histogram_by_data_source`` (per source
    and split), ``text_only`` (rows without an image, per split, and their share of all written rows); and the
    run's ``fields`` (record file -> role -> key, ``null`` for an optional role without a key) and
    ``image_sharing`` (set by the converter). ``by_problem_type`` of the base report is not used."""

    def __init__(self, out_dir):
        super().__init__(out_dir)
        self.histogram: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        self.by_source: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: {s: Counter() for s in SPLITS})
        self.text_only: Counter[str] = Counter()
        self.fields: dict[str, dict[str, str | None]] = {}
        self.image_sharing: dict = {}

    def written_sample(self, subset: str, split: str, data_source: str, score: float, n_images: int, nbytes: int):
        """Counts a written row; ``score`` is on the grid."""
        self.written_row(subset, split, "image" if n_images else "text-only", data_source, n_images, nbytes)
        level = f"{score:.1f}"
        self.histogram[split][level] += 1
        self.by_source[data_source][split][level] += 1
        if not n_images:
            self.text_only[split] += 1

    def to_dict(self, **extra) -> dict:
        d = super().to_dict(**extra)
        d.pop("by_problem_type")

        def full(c: Counter[str]) -> dict[str, int]:
            return {level: c[level] for level in LEVELS}

        total = d["rows_written"]["total"]
        n_text = sum(self.text_only.values())
        d["score_histogram"] = {s: full(self.histogram[s]) for s in SPLITS}
        d["score_histogram_by_data_source"] = {
            src: {s: full(h[s]) for s in SPLITS} for src, h in sorted(self.by_source.items())
        }
        d["text_only"] = {
            "train": self.text_only["train"],
            "val": self.text_only["val"],
            "total": n_text,
            "share": round(n_text / total, 6) if total else 0.0,
        }
        d["fields"] = self.fields
        d["image_sharing"] = self.image_sharing
        return d
