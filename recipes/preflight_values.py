"""The one way ``python -m sophiavl.recipes.preflight`` reads a composed config's values: a bad value is recorded as a
problem line naming its key, never raised.

A read returns the value, or None when the key is missing, null (where null is not allowed), not of the expected kind
or out of range; the check that needed it then skips what it cannot compute and the other checks still run. A key
gives at most one problem line, however often it is read.
"""

from __future__ import annotations

from typing import Any

_ABSENT = object()


class ConfigValues:
    """Validated reads of one composed config; ``problems`` (a list the caller owns) receives one line per bad key."""

    def __init__(self, cfg: Any, problems: list[str]) -> None:
        self._cfg = cfg
        self._problems = problems
        self._bad: set[str] = set()

    def _raw(self, key: str) -> Any:
        """The value at ``key``: ``_ABSENT`` when missing (or ``???``); a value that does not resolve is a problem."""
        from omegaconf import OmegaConf

        try:
            return OmegaConf.select(self._cfg, key, default=_ABSENT)
        except Exception as exc:  # noqa: BLE001  (an interpolation that fails names its own cause)
            self.problem(key, f"cannot be read: {' '.join(str(exc).split()[:30])}")
            return _ABSENT

    def problem(self, key: str, message: str) -> None:
        """Records ``key: message`` once per key (later problems of the same key are left out: one line per value)."""
        if key not in self._bad:
            self._bad.add(key)
            self._problems.append(message if message.startswith(key) else f"{key}: {message}")

    def is_bad(self, key: str) -> bool:
        """True when a read of ``key`` has recorded a problem."""
        return key in self._bad

    def count(self, key: str, *, minimum: int = 1, null_ok: bool = False, null_means: str = "") -> int | None:
        """An integer ``>= minimum`` at ``key`` (bools, floats and strings are not integers).

        None when it is bad (a problem is recorded) and when it is null with ``null_ok`` (no problem). ``null_means``
        says why null is not allowed where it is not (appended to the problem line).
        """
        value = self._raw(key)
        if value is _ABSENT:
            if not self.is_bad(key):
                self.problem(key, f"{key} is missing from the config (an integer >= {minimum} is needed)")
            return None
        if value is None:
            if not null_ok:
                self.problem(
                    key, f"{key}=null: an integer >= {minimum} is needed" + (f" ({null_means})" if null_means else "")
                )
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"{key}={value!r} is not an integer (an integer >= {minimum} is needed)")
            return None
        if value < minimum:
            self.problem(key, f"{key}={value} is less than {minimum}")
            return None
        return value

    def flag(self, key: str, default: bool = False) -> bool | None:
        """A bool at ``key``; ``default`` when missing or null; None (a problem recorded) when it is not a bool."""
        value = self._raw(key)
        if value is _ABSENT or value is None:
            return None if self.is_bad(key) else default
        if not isinstance(value, bool):
            self.problem(key, f"{key}={value!r} is not true or false")
            return None
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        """The value at ``key`` as a string; ``default`` when missing, null or unreadable."""
        value = self._raw(key)
        return default if value is _ABSENT or value is None else str(value)
