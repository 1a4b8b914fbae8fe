"""The collection settings, defined once: the ``reward.collect`` recipe keys (defaults in recipe ``sophiavl``, which
every training recipe starts from).

    reward.collect.dir=null            # a folder: write every scored training response there as rollout shards
    reward.collect.validation=false    # true: also the validation rows (extra_info.split != "train")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

#: The recipe node the settings come from.
NODE = "reward.collect"


@dataclass(frozen=True)
class CollectConfig:
    """Whether and where the reward manager writes the responses it scores.

    Attributes:
        dir: folder of the rollout shards (created when missing; one ``rollouts-<host>-<pid>-<start>.jsonl`` per
            reward worker process); ``None`` or ``""``: no collection (the default).
        validation: also collect validation rows (``extra_info.split`` present and not ``"train"``); default false,
            the paper collected training rollouts only.
    """

    dir: str | None = None
    validation: bool = False

    @property
    def enabled(self) -> bool:
        """True when a folder is set."""
        return bool(self.dir)

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> CollectConfig:
        """Builds the settings from the ``reward.collect`` node (DictConfig or dict; ``None``: the defaults, no
        collection).

        Raises ``ValueError`` naming the key: an unknown key (a typo must not silently switch collection off) or a
        non-boolean ``validation``.
        """
        if node is None:
            return cls()
        values = dict(node.items())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown keys under {NODE}: {unknown}; known keys: {sorted(known)}")
        folder = values.get("dir")
        validation = values.get("validation", False)
        if not isinstance(validation, bool):
            raise ValueError(f"{NODE}.validation must be true or false, got {validation!r}")
        return cls(dir=None if folder in (None, "") else str(folder), validation=validation)
