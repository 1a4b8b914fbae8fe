"""The collection hook: the reward manager hands each scored response to a :class:`RolloutCollector`, which writes it
as one :class:`RolloutRecord` line to its process's own shard.

Why the reward manager (docs/trm-data-build.md, "Collect responses"): every training recipe of this project scores
through ``ThinkingRewardManager.run_single`` (``sophiavl_grpo`` and the ablations included; the trust sampler is not
used by ``sophiavl_grpo``), and there verl 0.9.1's V1 agent loop hands over, beside the response and ``extra_info``,
the group's ``uid`` and the ``global_steps`` of the batch (every key of the prompt's row travels into the reward
loop's ``non_tensor_batch``).

One collector per reward-loop worker process: its shard is ``rollouts-<host>-<pid>-<start stamp>.jsonl``, opened at
the first record, appended to and flushed record by record (nothing is buffered: memory stays flat however long the
run). A restarted worker or a resumed run has another pid or start stamp and so a new shard; no record is rewritten.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from .config import CollectConfig
from .record import RolloutRecord
from .shards import ShardWriter

logger = logging.getLogger(__name__)

#: Longest example kept for a skipped response's reason.
EXAMPLE_CHARS = 300


_instances = itertools.count()


def process_tag(now: float | None = None) -> str:
    """``<host>-<pid>-<UTC start stamp>`` naming this process's shard, e.g. ``node1-4242-20261208T010203``; a second
    collector in the same process gets ``-1`` appended, a third ``-2``, and so on (verl builds one reward manager per
    worker process, tests build several). The host name is reduced to ``[A-Za-z0-9._]`` (other characters become
    ``_``) so that the tag is a safe file name."""
    host = re.sub(r"[^A-Za-z0-9._]", "_", socket.gethostname()) or "host"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    instance = next(_instances)
    return f"{host}-{os.getpid()}-{stamp}" + (f"-{instance}" if instance else "")


def _scalar(value: Any) -> Any:
    """A numpy scalar or 0-d array as its Python value; anything else unchanged."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 0) == 0:
        return item()
    return value


class RolloutCollector:
    """Writes scored responses of one process as rollout records.

    Args:
        config: the ``reward.collect`` settings; must be enabled (``config.dir`` set).
        tag: the shard's name part (default: :func:`process_tag`, evaluated now); records get ``rid``
            ``"<tag>-<seq>"``, seq counting from 0.

    Attributes:
        written: records written so far; ``skipped``: responses that could not be recorded (no usable
            ``extra_info.split``/``index``, or an outcome outside [0, 1]), with ``skip_example`` the first reason.
    """

    def __init__(self, config: CollectConfig, tag: str | None = None) -> None:
        if not config.enabled:
            raise ValueError("RolloutCollector needs reward.collect.dir")
        self.config = config
        self.tag = tag or process_tag()
        self.folder = str(config.dir)
        self._writer: ShardWriter | None = None
        self.written = 0
        self.skipped = 0
        self.skip_example: str | None = None
        self._step: int | None = None
        self._step_written = 0
        self._step_skipped = 0
        self._lock = threading.Lock()  # verl calls from one event loop; a threaded caller must not share a seq

    @property
    def path(self) -> str:
        """The shard this collector writes (it exists once the first record is written)."""
        return os.path.join(self.folder, f"rollouts-{self.tag}.jsonl")

    def wants(self, extra_info: Mapping[str, Any]) -> bool:
        """True for a training row (``extra_info["split"]`` missing or ``"train"``); a validation row only with
        ``reward.collect.validation=true``."""
        split = extra_info.get("split")
        return self.config.validation or split is None or str(split) == "train"

    def add(
        self,
        extra_info: Mapping[str, Any],
        data_source: Any,
        question: str,
        response: str,
        outcome: float,
        step: Any = None,
        group: Any = None,
    ) -> RolloutRecord | None:
        """Writes one scored response (a row :meth:`wants` refuses is ignored: returns None).

        Args:
            extra_info: the row's ``extra_info`` (``split``, ``index``, ``problem_id``, ``problem_type``, as
                ``sophiavl.data_prep`` writes them).
            data_source: the row's ``data_source`` (``extra_info["data_source"]`` when None).
            question: the question text (the reward manager passes ``extra_info["question"]``, else the prompt's
                user text).
            response: the decoded response, as scored.
            outcome: ``Ro`` in [0, 1] (NaN is written as null; a value outside [0, 1], from a custom outcome
                function, makes the response skipped).
            step: verl's ``global_steps`` of the batch (None when verl did not pass it).
            group: verl's ``uid`` of the prompt, shared by its rollout group (None when not passed).

        Returns the record written, or None when the row was not wanted or was skipped: a row without a usable
        ``split``/``index`` cannot be looked up again, so it is counted in ``skipped`` (the first reason logged as a
        warning, the counts printed per step), not written.
        """
        if not self.wants(extra_info):
            return None
        with self._lock:
            return self._add(extra_info, data_source, question, response, outcome, step, group)

    def _add(self, extra_info, data_source, question, response, outcome, step, group) -> RolloutRecord | None:
        step = _scalar(step)
        step = None if step is None else int(step)
        if step != self._step:
            self._report_step()
            self._step = step
        split, index = extra_info.get("split", "train"), _scalar(extra_info.get("index"))
        try:
            record = RolloutRecord.from_dict(
                {
                    "v": 1,
                    "rid": f"{self.tag}-{self.written + self.skipped}",
                    "split": str(split),
                    "index": index,
                    "problem_id": str(extra_info.get("problem_id") or ""),
                    "data_source": str(data_source if data_source is not None else extra_info.get("data_source", "")),
                    "problem_type": str(extra_info.get("problem_type") or ""),
                    "question": question,
                    "response": response,
                    "outcome": None if outcome is None or outcome != outcome else float(outcome),
                    "step": step,
                    "group": None if group is None else str(_scalar(group)),
                    "source": "grpo",
                }
            )
        except ValueError as exc:
            self.skipped += 1
            self._step_skipped += 1
            if self.skip_example is None:
                self.skip_example = f"row {dict(extra_info)!r}: {exc}"[:EXAMPLE_CHARS]
                logger.warning("collect: a scored response cannot be recorded and is skipped: %s", self.skip_example)
            return None
        if self._writer is None:
            self._writer = ShardWriter(self.folder, self.tag)
            print(f"[sophiavl collect] writing scored responses to {self._writer.path}", flush=True)
        self._writer.write([record])
        self.written += 1
        self._step_written += 1
        return record

    def _report_step(self) -> None:
        """Prints the finished step's counts (one line per worker and step; verl 0.9.1 gives a reward manager no
        channel to its per-step metrics)."""
        if self._step_written or self._step_skipped:
            print(
                f"[sophiavl collect] step {self._step}: {self._step_written} records written, {self._step_skipped} "
                f"skipped; {self.written} in all in {self.path}",
                flush=True,
            )
        self._step_written = self._step_skipped = 0

    def close(self) -> None:
        """Prints the last step's counts and closes the shard (a later :meth:`add` would raise)."""
        self._report_step()
        if self._writer is not None:
            self._writer.close()
