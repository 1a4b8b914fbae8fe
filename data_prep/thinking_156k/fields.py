"""Which record key holds which field of a Thinking-156k record: auto-detected per record file, or set with
``--field ROLE=NAME``.

The released file schema is not documented, so each role has a list of candidate key names; for each record file
the first candidate that occurs in any of its records wins. ``question``, ``response`` and ``score`` are required:
a file without any of their names stops the run. ``image``, ``source`` and ``id`` are optional (a text-only row,
the file name as data source, the record position as id).
"""

from __future__ import annotations

from collections.abc import Iterable

#: role -> candidate key names, in the order they are tried
CANDIDATES: dict[str, tuple[str, ...]] = {
    "question": ("question", "problem", "prompt", "query"),
    "response": ("response", "reasoning", "output"),
    "score": ("score", "thinking_score", "label", "reward"),
    "image": ("path", "image", "images", "image_path"),
    "source": ("data_source", "source"),
    "id": ("id", "problem_id", "idx"),
}
ROLES = tuple(CANDIDATES)
REQUIRED = ("question", "response", "score")

_MAX_KEYS_SHOWN = 40


class FieldError(ValueError):
    """A ``--field`` value that cannot be used, or a record file lacking a required role. Stops the run."""


def parse_field_overrides(values: Iterable[str]) -> dict[str, str]:
    """``["score=rating", "image=img"]`` -> ``{"score": "rating", "image": "img"}``.

    Raises:
        FieldError: a value without ``=``, an unknown role, an empty name, or a role given twice.
    """
    out: dict[str, str] = {}
    for value in values:
        role, sep, name = value.partition("=")
        role, name = role.strip(), name.strip()
        if not sep or not name:
            raise FieldError(f"--field {value!r}: expected ROLE=NAME, e.g. score=rating")
        if role not in CANDIDATES:
            raise FieldError(f"--field {value!r}: unknown role {role!r}; roles are {', '.join(ROLES)}")
        if role in out:
            raise FieldError(f"--field: role {role!r} given twice")
        out[role] = name
    return out


def detect_fields(keys: set[str], overrides: dict[str, str], file: str) -> dict[str, str | None]:
    """The key used for each role in one record file, or ``None`` for an optional role without a key.

    Args:
        keys: every key that occurs in the file's records (the union over its objects).
        overrides: ``--field`` values (:func:`parse_field_overrides`); an override names the key outright.
        file: the file's name, for messages.

    Raises:
        FieldError: a required role matches no key, or an override names a key no record has; the message lists
            the keys the records do have.
    """
    shown = ", ".join(sorted(keys)[:_MAX_KEYS_SHOWN]) + (", ..." if len(keys) > _MAX_KEYS_SHOWN else "")
    fields: dict[str, str | None] = {}
    for role, names in CANDIDATES.items():
        if role in overrides:
            if overrides[role] not in keys:
                raise FieldError(
                    f"{file}: --field {role}={overrides[role]}: no record has the key {overrides[role]!r}; "
                    f"the records' keys are: {shown or '(none)'}"
                )
            fields[role] = overrides[role]
            continue
        fields[role] = next((n for n in names if n in keys), None)
        if fields[role] is None and role in REQUIRED:
            raise FieldError(
                f"{file}: no key for the {role} (looked for {', '.join(names)}); the records' keys are: "
                f"{shown or '(none)'}. Name it with --field {role}=KEY"
            )
    return fields
