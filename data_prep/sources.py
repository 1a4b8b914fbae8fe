"""Where a record's image lives: an unpacked file under the dataset root, or a member of a subset archive.

The released dataset ships its images as per-subset archives (``Math.zip``, ``Chart.zip``, ...), tens of GB each.
They are read in place with :mod:`zipfile`; nothing is extracted.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path


class PathEscapesRoot(ValueError):
    """The record's image path is absolute or climbs out of the dataset root (``..``, or a symlink)."""


class ImageMissing(FileNotFoundError):
    """The image is neither an unpacked file under the root nor a member of any archive in the root."""


def normalize_relpath(path: str) -> str:
    """Normalizes a record's image path to a clean POSIX path relative to the dataset root.

    ``./Math/a.png``, ``Math//a.png`` and ``Math\\a.png`` all become ``Math/a.png``. Inner ``..`` that stays
    inside the root is folded (``Math/x/../a.png`` -> ``Math/a.png``).

    Raises:
        PathEscapesRoot: for absolute paths (``/x``, ``C:/x``, ``\\\\host\\x``) or paths that climb above the root.
        ImageMissing: for an empty path.
    """
    if not isinstance(path, str) or not path.strip():
        raise ImageMissing("empty image path")
    p = path.strip().replace("\\", "/")
    if p.startswith("/") or (len(p) > 1 and p[1] == ":"):
        raise PathEscapesRoot(f"absolute image path {path!r}")
    norm = posixpath.normpath(p)
    if norm == ".." or norm.startswith("../"):
        raise PathEscapesRoot(f"image path {path!r} leaves the dataset root")
    if norm == ".":
        raise ImageMissing(f"image path {path!r} names the root itself")
    return norm


@dataclass(frozen=True)
class ImageRef:
    """A located image: ``archive`` is None for an unpacked file (``location`` is then its absolute path),
    else the archive's absolute path (``location`` is then the member name)."""

    location: str
    archive: str | None = None


class ImageStore:
    """Locates and reads images under one dataset root. Not shared between processes: build one per process.

    Archives are the ``*.zip`` files directly in the root. The archive named after the path's first component
    (``Math/...`` -> ``Math.zip``, case-insensitive) is searched first, then the others; inside an archive the
    member may carry the full relative path or the path without its first component.

    ``link_root`` is the folder that symlinks under the root may point into (default: the root itself); a hub cache
    snapshot, whose files are links into the repository's ``blobs/``, passes the repository folder
    (:func:`sophiavl.data_prep.hub.link_root`).
    """

    def __init__(self, root: Path | str, link_root: Path | str | None = None):
        self.root = Path(root).resolve()
        self.link_root = Path(link_root).resolve() if link_root is not None else self.root
        self._archives = sorted(p for p in self.root.glob("*.zip") if p.is_file()) if self.root.is_dir() else []
        self._open: dict[Path, zipfile.ZipFile] = {}

    def locate(self, path: str) -> ImageRef:
        """Finds the image for a record path (see :func:`normalize_relpath`); unpacked files win over archives.

        Raises:
            PathEscapesRoot: the path, or a symlink it goes through, leaves the root.
            ImageMissing: found nowhere.
        """
        rel = normalize_relpath(path)
        on_disk = self.root / rel
        if os.path.lexists(on_disk):
            real = on_disk.resolve()
            if not real.is_relative_to(self.link_root):
                raise PathEscapesRoot(f"image path {path!r} resolves outside the dataset root")
            if real.is_file():
                return ImageRef(str(real))
        top, _, rest = rel.partition("/")
        first = [a for a in self._archives if a.stem.lower() == top.lower()]
        for archive in first + [a for a in self._archives if a not in first]:
            zf = self._zip(archive)
            for member in (rel, rest):  # rel is normalized, so never a directory entry ("x/")
                if member and _has_member(zf, member):
                    return ImageRef(member, str(archive))
        raise ImageMissing(f"image {rel!r} is neither under {self.root} nor in any archive there")

    def size(self, ref: ImageRef) -> int:
        """The image's size in bytes (uncompressed size for an archive member)."""
        if ref.archive is None:
            return os.path.getsize(ref.location)
        return self._zip(Path(ref.archive)).getinfo(ref.location).file_size

    def read(self, ref: ImageRef) -> bytes:
        """The image file's original bytes, unchanged."""
        if ref.archive is None:
            with open(ref.location, "rb") as f:
                return f.read()
        return self._zip(Path(ref.archive)).read(ref.location)

    def close(self) -> None:
        """Closes the open archives (the store can still be used: they reopen on demand)."""
        for zf in self._open.values():
            zf.close()
        self._open.clear()

    def _zip(self, archive: Path) -> zipfile.ZipFile:
        zf = self._open.get(archive)
        if zf is None:
            zf = self._open[archive] = zipfile.ZipFile(archive)
        return zf


def _has_member(zf: zipfile.ZipFile, name: str) -> bool:
    try:
        zf.getinfo(name)
    except KeyError:
        return False
    return True
