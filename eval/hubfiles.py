"""Finding one split's parquet shards in a folder laid out as ``huggingface-cli download --repo-type dataset``
leaves it (or as a hub cache snapshot), and reading their rows in batches.

The dataset card's ``configs`` (the YAML front matter of ``README.md``: ``config_name`` and ``data_files`` with
``split`` and ``path`` patterns) decides where it says something, as ``datasets`` does; otherwise the hub's file
naming is used: ``<split>-*.parquet`` or ``<split>.parquet`` anywhere below the folder, or any parquet file inside a
folder named ``<split>``; with a config, only files below a folder named after it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class SplitNotFound(FileNotFoundError):
    """No parquet file of the requested config/split; the message lists what the folder has."""


def read_card_configs(root: Path) -> list[dict]:
    """The ``configs`` list of ``root/README.md``'s YAML front matter, or ``[]`` (no card, no front matter, no
    ``configs`` key, or YAML that does not parse)."""
    card = root / "README.md"
    if not card.is_file():
        return []
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return []
    end = text.find("\n---", 3)
    if end == -1:
        return []
    import yaml

    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError:
        return []
    configs = meta.get("configs") if isinstance(meta, dict) else None
    return [c for c in configs if isinstance(c, dict)] if isinstance(configs, list) else []


def _card_patterns(configs: list[dict], config: str | None, split: str) -> list[str] | None:
    if not configs:
        return None
    if config is not None:
        chosen = [c for c in configs if c.get("config_name") == config]
    else:
        chosen = [c for c in configs if c.get("config_name", "default") == "default" or c.get("default")]
        if not chosen and len(configs) == 1:
            chosen = configs
    if not chosen:
        return None
    files = chosen[0].get("data_files")
    if isinstance(files, str | list) and not (isinstance(files, list) and files and isinstance(files[0], dict)):
        return None  # no split names in the card
    patterns: list[str] = []
    for entry in files or []:
        if isinstance(entry, dict) and entry.get("split") == split:
            path = entry.get("path")
            patterns.extend([path] if isinstance(path, str) else list(path or []))
    return patterns


def _all_parquet(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet") if ".cache" not in p.relative_to(root).parts)


def split_files(root: Path | str, split: str, config: str | None = None) -> list[Path]:
    """The parquet shards of ``split`` (and ``config``) below ``root``, sorted by path.

    Raises:
        SplitNotFound: nothing matches; the message names the parquet files present.
    """
    root = Path(root)
    everything = _all_parquet(root)
    patterns = _card_patterns(read_card_configs(root), config, split)
    if patterns:
        rel = {p: p.relative_to(root).as_posix() for p in everything}
        found = [p for p, r in rel.items() if any(fnmatch.fnmatch(r, pat) for pat in patterns)]
    else:
        found = []
        for p in everything:
            parts = p.relative_to(root).parts
            if config is not None and config not in parts[:-1]:
                continue
            stem = p.name[: -len(".parquet")]
            if stem == split or stem.startswith(f"{split}-") or split in parts[:-1]:
                found.append(p)
    if not found:
        have = ", ".join(p.relative_to(root).as_posix() for p in everything[:20]) or "no parquet files"
        what = f"split {split!r}" + (f" of config {config!r}" if config else "")
        raise SplitNotFound(f"no parquet file of {what} under {root} (found: {have})")
    return sorted(found)


def iter_rows(files: list[Path], batch_rows: int = 64) -> Iterator[dict[str, Any]]:
    """The rows of ``files`` in order, as dicts (image cells stay ``{"bytes", "path"}`` structs: never decoded).
    Memory holds one batch of ``batch_rows`` rows."""
    import pyarrow.parquet as pq

    for path in files:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows):
            yield from batch.to_pylist()
