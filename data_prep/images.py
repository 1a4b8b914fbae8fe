"""The image stage shared by the converters: locate, read and check each row's images, in the main process or in
worker processes, in bounded batches whose results come back in input order."""

from __future__ import annotations

import multiprocessing
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from .hub import link_root
from .imagecheck import ImageRejected, probe_image
from .records import RecordRejected, path_rejections
from .sources import ImageStore


class HasImages(Protocol):
    """Anything with ``image_paths``: record paths relative to the dataset root (empty for text-only rows)."""

    image_paths: list[str]


_STATE: dict = {}


def init_worker(src: str, images: str, max_pixels: int, max_bytes: int) -> None:
    """Sets up this process's image store and checks (called in each worker, or once in the main process)."""
    _STATE.update(store=ImageStore(src, link_root(src)), images=images, max_pixels=max_pixels, max_bytes=max_bytes)


def close_worker_state() -> None:
    """Closes the main process's store (open archives) and forgets the settings."""
    if "store" in _STATE:
        _STATE["store"].close()
    _STATE.clear()


def load_images(problem: HasImages, store: ImageStore, images: str, max_pixels: int, max_bytes: int):
    """Locates, reads and checks the problem's images; returns ``(image_dicts, image_bytes)``.

    Embed mode gives ``{"bytes": <file bytes, unchanged>}``; path mode ``{"image": <absolute path>}`` (images found
    only inside an archive are rejected there, as they have no path). ``image_bytes`` counts embedded bytes.

    Raises:
        RecordRejected: path_escapes_root, image_missing, image_only_in_archive, image_unreadable,
            image_too_large.
    """
    out, nbytes = [], 0
    for path in problem.image_paths:
        with path_rejections():
            ref = store.locate(path)
        if images == "path" and ref.archive is not None:
            raise RecordRejected("image_only_in_archive", f"{path} is in {Path(ref.archive).name}, not unpacked")
        try:
            size = store.size(ref)
            if size > max_bytes:
                raise RecordRejected("image_too_large", f"{path}: {size} bytes exceeds {max_bytes}")
            data = store.read(ref)
            probe_image(data, max_pixels)
        except ImageRejected as e:
            raise RecordRejected(e.reason, f"{path}: {e.detail}") from None
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise RecordRejected("image_unreadable", f"{path}: {type(e).__name__}: {e}") from None
        if images == "embed":
            out.append({"bytes": data})
            nbytes += len(data)
        else:
            out.append({"image": ref.location})
    return out, nbytes


def load_batch(problems: list[HasImages]) -> list[tuple[list[dict], int] | RecordRejected]:
    """:func:`load_images` for each problem with this process's settings (:func:`init_worker`); a rejection is
    returned in the problem's place, not raised."""
    s = _STATE
    results = []
    for p in problems:
        try:
            results.append(load_images(p, s["store"], s["images"], s["max_pixels"], s["max_bytes"]))
        except RecordRejected as e:
            results.append(e)
    return results


class ImageStage:
    """Runs :func:`load_batch` over batches, in ``workers`` spawned processes (or in this process when
    ``workers == 1``), at most ``2 * workers`` batches in flight; results come back in input order.

    Use as a context manager; it shuts the pool down and closes the store on exit.
    """

    def __init__(self, src: str, images: str, max_pixels: int, max_bytes: int, workers: int = 1):
        init = (src, images, max_pixels, max_bytes)
        self.workers = workers
        self.pool = None
        if workers > 1:
            # spawn, not fork: the parent holds pyarrow's thread pools, which fork does not copy safely
            ctx = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=init)
        else:
            init_worker(*init)

    def run(
        self, batches: Iterable[list[Any]], select: Callable[[list[Any]], list[HasImages]]
    ) -> Iterator[tuple[list[Any], list]]:
        """Yields ``(batch, results)`` per batch, in order; ``results`` has one entry per ``select(batch)`` item
        (``(image_dicts, image_bytes)`` or a :class:`RecordRejected`)."""
        if self.pool is None:
            for batch in batches:
                yield batch, load_batch(select(batch))
            return
        inflight: deque = deque()
        for batch in batches:
            inflight.append((batch, self.pool.submit(load_batch, select(batch))))
            while len(inflight) > 2 * self.workers:
                b, fut = inflight.popleft()
                yield b, fut.result()
        while inflight:
            b, fut = inflight.popleft()
            yield b, fut.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        close_worker_state()

    def __enter__(self) -> ImageStage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
