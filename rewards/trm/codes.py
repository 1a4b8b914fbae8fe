"""The numeric codes a judgement carries through verl's reward extra info (``thinking_status``, ``thinking_error``).

verl keeps ``reward_extra_info`` values numeric, so outcomes of a thinking-RM call travel as codes; the reward
manager writes them and the trust sampler reads, counts and reports them. This module is their one definition.
"""

import http

#: ``thinking_status``: the judge answered with a score.
STATUS_OK = 0
#: ``thinking_status``: the judge was not asked (validation row, or ``Ro < skip_rm_below`` under ``official``).
STATUS_SKIPPED = 1
#: ``thinking_status``: the judge was asked and gave no usable score (after retries, or an unparseable reply).
STATUS_FAILED = 2

# ``thinking_error``: 0 none, a positive value is the HTTP status of the last attempt, negative values below.
ERROR_NONE = 0
ERROR_TIMEOUT = -1
ERROR_CONNECTION = -2
ERROR_UNPARSEABLE = -3
ERROR_MALFORMED = -4
ERROR_BAD_INPUT = -5

#: Short name (for metric keys) and words (for messages) of each negative error code.
ERROR_NAMES: dict[int, tuple[str, str]] = {
    ERROR_TIMEOUT: ("timeout", "timeout"),
    ERROR_CONNECTION: ("connection", "connection error"),
    ERROR_UNPARSEABLE: ("unparseable", "unparseable reply"),
    ERROR_MALFORMED: ("malformed", "malformed response"),
    ERROR_BAD_INPUT: ("bad_input", "unusable input (for example a corrupt image)"),
}


def error_kind(code: float) -> str:
    """A short metric-friendly name for ``code``: ``"none"``, ``"http"`` (any code > 0), a name from
    :data:`ERROR_NAMES`, or ``"other"`` for an unknown negative code."""
    code = int(code)
    if code == ERROR_NONE:
        return "none"
    if code > 0:
        return "http"
    return ERROR_NAMES.get(code, ("other", ""))[0]


def describe_error(code: float) -> str:
    """Words for ``code``, e.g. ``"HTTP 503 (Service Unavailable)"`` or ``"timeout"``; never raises."""
    code = int(code)
    if code == ERROR_NONE:
        return "no error"
    if code > 0:
        try:
            return f"HTTP {code} ({http.HTTPStatus(code).phrase})"
        except ValueError:
            return f"HTTP {code}"
    return ERROR_NAMES.get(code, ("other", f"unknown error code {code}"))[1]
