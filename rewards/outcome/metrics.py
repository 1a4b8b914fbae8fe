"""Per-step health of the outcome scorer, from the ``reward_extra_info`` of a training batch.

The reward manager reports ``scorer_failed`` (1.0 when the outcome scorer timed out or raised and ``Ro`` became 0) for
every response; the trust sampler calls :func:`scorer_failure_metrics` on each training batch and verl logs the result
with the step's other metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

SCORER_FAILED_KEY = "scorer_failed"
METRIC = "outcome/scorer_failed_count"


def scorer_failure_metrics(
    extras: Sequence[Mapping[str, Any]], tags: Sequence[Mapping[str, Any]] | None = None, step: int | None = None
) -> dict[str, float]:
    """``{"outcome/scorer_failed_count": N}``: rows of the batch whose outcome scoring failed.

    Args:
        extras: one ``reward_extra_info`` dict per row of the batch.
        tags: the batch's row tags, same length; rows tagged ``is_padding`` (verl's pad rows, copies of a real row)
            are not counted. None or a list of another length (no tags recorded): every row counts.
        step: the global step, for the warning.

    Returns ``{}`` when no row reports ``scorer_failed`` (a reward manager that does not report it); logs a warning
    when N > 0 (the reward workers' log names each failed answer, its data source and problem type).
    """
    count, reported = 0, False
    if tags is not None and len(tags) != len(extras):
        tags = None
    for row, info in enumerate(extras):
        if tags is not None and bool((tags[row] or {}).get("is_padding", False)):
            continue
        if isinstance(info, Mapping) and SCORER_FAILED_KEY in info:
            reported = True
            count += int(float(info[SCORER_FAILED_KEY]) >= 0.5)
    if not reported:
        return {}
    if count:
        logger.warning(
            "step %s: the outcome scorer failed (timeout or error) on %d response(s), scored 0; the reward workers' "
            "log shows each one (data source, problem type, answer)",
            step,
            count,
        )
    return {METRIC: float(count)}
