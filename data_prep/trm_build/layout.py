"""Writing balanced rows in the released SophiaVL-R1-Thinking-156k layout, the layout
``python -m sophiavl.data_prep.thinking_156k`` converts:

    OUT/json/multimodal_part.json     a JSON array, one object per row with an image
    OUT/text_part.jsonl               JSON lines, one object per text-only row
    OUT/images/<ab>/<sha256>.<ext>    each distinct image once, named by its content hash (<ab>: its first 2 hex)

A record holds the keys the converter detects first for each role (``id``, ``question``, ``response``, ``score``,
``path``, ``data_source``) and, for people, ``problem_type``, ``problem_id``, ``split``, ``index`` (the prepared row),
``judges`` and ``samples`` (every scored sample behind the label). Image files are copied from the annotation
folder's ``images/``, whose names ``annotate`` made from the content's SHA-256; a name already present in ``OUT`` is
not copied again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .annotation import Annotation
from .digests import DigestSet, digest

MULTIMODAL_FILE = "json/multimodal_part.json"
TEXT_FILE = "text_part.jsonl"
IMAGES_DIR = "images"


def image_relpath(name: str) -> str:
    """``"ab12...ef.png"`` -> ``"images/ab/ab12...ef.png"`` (the path a record holds, relative to ``OUT``)."""
    return f"{IMAGES_DIR}/{name[:2]}/{name}"


def remove_outputs(out: Path) -> None:
    """Removes the record files of an earlier run in ``out`` (images stay: they are named by content)."""
    for rel in (MULTIMODAL_FILE, TEXT_FILE):
        (out / rel).unlink(missing_ok=True)


class LayoutWriter:
    """Streams rows into the record files (written under temporary names, renamed by :meth:`close`)."""

    def __init__(self, out: Path):
        self.out = out
        (out / "json").mkdir(parents=True, exist_ok=True)
        self._mm_tmp = out / (MULTIMODAL_FILE + ".tmp")
        self._text_tmp = out / (TEXT_FILE + ".tmp")
        self._mm = open(self._mm_tmp, "w", encoding="utf-8")  # noqa: SIM115  (closed by close())
        self._text = open(self._text_tmp, "w", encoding="utf-8")  # noqa: SIM115
        self.image_rows = 0
        self.text_rows = 0
        self.images_copied = 0
        self._image_names = DigestSet()  # 8 bytes per distinct image

    def write(self, ann: Annotation, images_dir: Path, label_tenths: int, samples: list[int], judges: list[str]):
        """Writes one row: ``ann``'s rollout with the label ``label_tenths / 10``; its image (at most one) copied
        from ``images_dir``. ``samples`` (tenths) and ``judges`` are kept in the record for people."""
        r = ann.rollout
        record: dict = {"id": r.rid, "question": r.question, "response": r.response, "score": label_tenths / 10}
        if ann.images:
            record["path"] = self._copy(images_dir, ann.images[0])
        record.update(
            data_source=r.data_source, problem_type=r.problem_type, problem_id=r.problem_id, split=r.split,
            index=r.index, judges=judges, samples=[t / 10 for t in samples],
        )  # fmt: skip
        line = json.dumps(record, ensure_ascii=False)
        if ann.images:
            self._mm.write(("[\n" if not self.image_rows else ",\n") + line)
            self.image_rows += 1
        else:
            self._text.write(line + "\n")
            self.text_rows += 1

    def _copy(self, images_dir: Path, name: str) -> str:
        rel = image_relpath(name)
        if self._image_names.add(digest(name)):
            dest = self.out / rel
            if not dest.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(dest.name + ".tmp")
                shutil.copyfile(images_dir / name, tmp)
                os.replace(tmp, dest)
                self.images_copied += 1
        return rel

    @property
    def distinct_images(self) -> int:
        """Distinct images the written rows point to."""
        return len(self._image_names)

    def close(self) -> None:
        """Finishes both files and moves them into place; a file with no row is not written."""
        if self.image_rows:
            self._mm.write("\n]\n")
        self._mm.close()
        self._text.close()
        files = ((self._mm_tmp, self.image_rows, MULTIMODAL_FILE), (self._text_tmp, self.text_rows, TEXT_FILE))
        for tmp, rows, rel in files:
            if rows:
                os.replace(tmp, self.out / rel)
            else:
                tmp.unlink()
