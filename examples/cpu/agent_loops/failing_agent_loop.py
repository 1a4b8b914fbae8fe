"""verl's single-turn agent loop with rollout sessions that fail on purpose (examples/cpu/demo.py --failed-sessions).

Not part of the product: it lets a CPU run meet what a run at scale meets now and then, a rollout session that
raises, through verl's own path and without patching verl. verl 0.9.1 loads it from
``actor_rollout_ref.rollout.agent.agent_loop_config_path`` (``failing.yaml`` beside this file) and instantiates it
per session with that file's keys as keyword arguments; ``actor_rollout_ref.rollout.agent.default_agent_loop``
selects it. A session that raises writes no trajectory, the group's prompt gets verl's ``failure`` status, and in
sync mode the group stays sampleable with the rows of its surviving sessions (``verl/trainer/ppo/v1/
agent_loop_tq.py`` ``_run_prompt``; ``replay_buffer.py``), which verl then pads to its batch multiple.

Which sessions fail is fixed by the dataset row and the session id, so a run repeats:

* every session of a row whose dataset index (``extra_info.index``) is a multiple of ``lose_group_every``: the whole
  group is lost (no row at all);
* session ``fail_session`` of every other row: the group keeps ``n - 1`` rows.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop


class SessionFailure(RuntimeError):
    """The failure this agent loop raises on purpose (its message says so)."""


class FailingSingleTurnAgentLoop(SingleTurnAgentLoop):
    """``SingleTurnAgentLoop`` that raises :class:`SessionFailure` for the sessions the module docstring names.

    Args:
        lose_group_every: every session of a row whose dataset index is a multiple of this fails (>= 1).
        fail_session: the session id that fails in every other row (``-1``: none).
        name: the agent loop's registry name (verl passes the config entry's keys; unused).
    """

    def __init__(self, *args, lose_group_every: int = 5, fail_session: int = 0, name: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if int(lose_group_every) < 1:
            raise ValueError(f"lose_group_every must be >= 1, got {lose_group_every!r}")
        self.lose_group_every = int(lose_group_every)
        self.fail_session = int(fail_session)

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
        index, session = int(kwargs.get("index", 0)), int(kwargs["session_id"])
        if index % self.lose_group_every == 0:
            raise SessionFailure(
                f"failing agent loop (on purpose): every session of dataset row {index} fails "
                f"(a multiple of lose_group_every={self.lose_group_every}); this is session {session}"
            )
        if session == self.fail_session:
            raise SessionFailure(f"failing agent loop (on purpose): session {session} of dataset row {index} fails")
        return await super().run(sampling_params, **kwargs)
