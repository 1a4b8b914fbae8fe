"""Dataset sources: a local folder, or a Hugging Face Hub repository named ``hf://OWNER/NAME``.

A hub source is fetched with :func:`huggingface_hub.snapshot_download` into the ordinary hub cache
(``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``): an interrupted download resumes where it stopped, only the
files matching ``allow_patterns`` are fetched, and ``revision`` pins a branch, tag or commit. With
``HF_HUB_OFFLINE=1`` nothing is downloaded and the snapshot is taken from the cache (``refs/<revision>`` names the
commit, ``snapshots/<commit>/`` holds the files), as :mod:`huggingface_hub` itself resolves it.
"""

from __future__ import annotations

import re
from pathlib import Path

HF_SCHEME = "hf://"

#: image files a converter may need from a hub snapshot (fnmatch patterns; ``*`` also matches ``/``)
IMAGE_PATTERNS = ["*.png", "*.jpg", "*.jpeg", "*.gif", "*.webp", "*.bmp", "*.tif", "*.tiff", "*.PNG", "*.JPG", "*.JPEG"]

# OWNER/NAME as the hub allows them: letters, digits, '-', '_', '.'; no '--' or '..'; at most 96 characters
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SourceError(ValueError):
    """A ``--src`` that cannot be used: a missing local folder, a malformed hub id, a repository or revision that
    does not exist, or a snapshot that is not in the cache while ``HF_HUB_OFFLINE=1``. The message says which."""


def is_hub_src(src: str) -> bool:
    """True for ``hf://...`` sources."""
    return str(src).startswith(HF_SCHEME)


def parse_hub_id(src: str, repo_type: str = "dataset") -> str:
    """``hf://OWNER/NAME`` -> ``OWNER/NAME``. The hub's own ``hf://datasets/OWNER/NAME`` spelling is accepted too
    (for ``repo_type="dataset"``; ``models/``/``spaces/`` likewise for their types).

    Raises:
        SourceError: anything but exactly two non-empty parts made of letters, digits, ``-``, ``_`` and ``.``
            (no ``--`` or ``..``, at most 96 characters in all).
    """
    rest = str(src)[len(HF_SCHEME) :].strip("/") if is_hub_src(src) else str(src)
    parts = rest.split("/")
    if len(parts) == 3 and parts[0] == f"{repo_type}s":
        parts = parts[1:]
    repo_id = "/".join(parts)
    ok = (
        len(parts) == 2
        and all(_PART.match(p) and "--" not in p and ".." not in p for p in parts)
        and len(repo_id) <= 96
    )
    if not ok:
        raise SourceError(f"bad hub id {src!r}: expected hf://OWNER/NAME, e.g. hf://bunny127/SophiaVL-R1-Thinking-156k")
    return repo_id


def resolve_src(
    src: str,
    *,
    revision: str | None = None,
    allow_patterns: list[str] | None = None,
    repo_type: str = "dataset",
) -> Path:
    """The local folder that holds the dataset named by ``src``.

    Args:
        src: a local folder (returned as given, ``~`` expanded) or ``hf://OWNER/NAME``.
        revision: hub only: a branch, tag or 40-hex commit (``None`` = ``main``). Given with a local folder it is
            an error (a folder has no revisions).
        allow_patterns: hub only: fnmatch patterns of the repository files to fetch (``*`` also matches ``/``);
            ``None`` fetches everything.
        repo_type: hub only: ``"dataset"`` (default), ``"model"`` or ``"space"``.

    Returns:
        The folder: for a hub source, the cache's snapshot folder ``.../snapshots/<commit>/``, whose files keep
        the repository's relative paths.

    Raises:
        SourceError: see the class; the message names the source, the revision and the cache folder.
    """
    if not is_hub_src(src):
        if revision is not None:
            raise SourceError(f"--revision {revision!r} applies to hf:// sources only, not to the folder {src!r}")
        path = Path(src).expanduser()
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise SourceError(f"source folder {src!r} {what} (give a dataset folder or hf://OWNER/NAME)")
        return path
    repo_id = parse_hub_id(src, repo_type)
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{src} (revision {revision or 'main'}, cache {constants.HF_HUB_CACHE})"
    try:
        # offline: said explicitly, as a commit-hash revision would otherwise still try to list the repo's files
        folder = snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            allow_patterns=allow_patterns,
            local_files_only=constants.HF_HUB_OFFLINE,
        )
    except RevisionNotFoundError:
        raise SourceError(f"{where}: no such revision on the hub") from None
    except GatedRepoError:
        raise SourceError(f"{where}: the repository is gated; accept its terms and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise SourceError(f"{where}: no such {repo_type} repository on the hub (or it is private)") from None
    except IncompleteSnapshotError as e:
        raise SourceError(f"{where}: {e}") from None
    except LocalEntryNotFoundError as e:
        if constants.HF_HUB_OFFLINE:
            raise SourceError(f"{where}: not in the hub cache and HF_HUB_OFFLINE=1 forbids downloading it") from None
        raise SourceError(f"{where}: not reachable and not in the hub cache: {e}") from None
    except HFValidationError as e:
        raise SourceError(f"{where}: {e}") from None
    return Path(folder)


def link_root(folder: Path | str) -> Path:
    """The folder that symlinks inside ``folder`` may legitimately point into: for a hub cache snapshot
    (``<cache>/<repo folder>/snapshots/<commit>``, whose files are links into ``<repo folder>/blobs/``) the repo
    folder; for anything else ``folder`` itself. Both resolved."""
    folder = Path(folder).resolve()
    parent = folder.parent
    if parent.name == "snapshots" and (parent.parent / "blobs").is_dir():
        return parent.parent
    return folder
