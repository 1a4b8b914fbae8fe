"""The reward-info contract: what the reward manager puts in verl's ``reward_extra_info`` for every sample, and what
the trust sampler reads back from it. Stated once, here.

verl carries each sample's ``reward_extra_info`` from the reward loop to the trainer's replay buffer, where the trust
sampler reads it to shape the group's rewards. Every sample of a run carries the same keys, all floats (verl stacks
them into columns).
"""

from __future__ import annotations

from typing import TypedDict


class RewardInfo(TypedDict):
    """One sample's ``reward_extra_info`` (plus ``thinking_sample_0`` .. ``thinking_sample_{K-1}`` when K > 1).

    Keys (all floats):

    =================== ================================================================================================
    ``outcome``         ``Ro`` in [0, 1]
    ``thinking``        ``Rt`` in [0, 1]; NaN when not available
    ``thinking_status`` 0 ok, 1 skipped (validation row, thinking reward off, or ``official`` semantics and
                        ``Ro < skip_rm_below``), 2 failed (after retries, unparseable reply, or unusable input)
    ``thinking_error``  0 none; the HTTP status; -1 timeout; -2 connection error; -3 unparseable; -4 malformed
                        response; -5 unusable input (e.g. a corrupt image)
    ``format_ok``       1.0 when the response passes the ``<think>``/``<answer>`` format gate, else 0.0
    ``scorer_failed``   1.0 when the outcome scorer timed out or raised (``Ro`` is then 0 and the reward worker logs a
                        warning naming the data source, problem type and answer), else 0.0; the trust sampler logs the
                        step's count as ``outcome/scorer_failed_count``
    ``rm_latency_s``    seconds spent in the judge call, retries included; 0 when skipped
    ``acc``             1.0 when ``Ro >= algorithm.trust_grpo.correct_threshold`` (0.5; verl's ``val-core``), else 0.0
    ``reward_begin_t``  Unix time (s) at which verl handed the finished response to the manager (its rollout ended)
    ``reward_end_t``    Unix time (s) at which its reward was ready; the trust sampler logs the batch's reward tail
                        ``max(reward_end_t) - max(reward_begin_t)`` (the wait for rewards after the last rollout)
    =================== ================================================================================================

    With ``reward.thinking_rm.samples`` = K > 1, K more keys ``thinking_sample_0`` .. ``thinking_sample_{K-1}`` hold
    each judge sample's score (NaN for a failed sample, or for every sample when the response was not judged); the
    trust sampler reads them for ``algorithm.trust_grpo.trust=variance``.
    """

    outcome: float
    thinking: float
    thinking_status: float
    thinking_error: float
    format_ok: float
    scorer_failed: float
    rm_latency_s: float
    acc: float
    reward_begin_t: float
    reward_end_t: float


#: The keys of every sample's ``reward_extra_info``, in the order the reward manager writes them.
EXTRA_KEYS: tuple[str, ...] = tuple(RewardInfo.__annotations__)
#: The keys the trust sampler needs on every training sample (it stops with an error naming them when one is missing).
TRUST_SAMPLER_KEYS: tuple[str, ...] = ("outcome", "thinking", "thinking_status", "thinking_error", "rm_latency_s")
#: Prefix of the per-sample score keys ``thinking_sample_{j}`` (K > 1 only).
SAMPLE_KEY_PREFIX = "thinking_sample_"


def sample_keys(samples: int) -> tuple[str, ...]:
    """The per-sample score keys for K = ``samples`` judge replies: none for K = 1, else
    ``thinking_sample_0`` .. ``thinking_sample_{K-1}``."""
    return () if samples <= 1 else tuple(f"{SAMPLE_KEY_PREFIX}{j}" for j in range(samples))
