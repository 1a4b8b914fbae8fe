"""Fail-fast check of the Trust-GRPO wiring, run when verl resolves its config.

Registers the OmegaConf resolver ``sophiavl.check_trust_wiring`` on import (the verl plugin imports this module in
every process). The recipe sets ``algorithm.trust_grpo.check_wiring: ${sophiavl.check_trust_wiring:}``; verl's
``TaskRunner.run`` resolves the whole config (``OmegaConf.to_container(config, resolve=True)``) before it builds
the trainer, so a missing trust sampler, an unknown estimator or a wrong trainer mode stops the run there, before
any worker, model or rollout starts. The resolver receives the config root and calls
:func:`sophiavl.recipes.trust_wiring_check.check_trust_wiring` and
:func:`sophiavl.recipes.config_traps.config_trap_problems` (configurations verl would run wrongly); it resolves to
``true``. Setting the key to ``false`` skips the check.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from sophiavl.recipes.config_traps import config_trap_problems
from sophiavl.recipes.trust_wiring_check import check_trust_wiring

RESOLVER_NAME = "sophiavl.check_trust_wiring"


def _resolve(*, _root_) -> bool:
    traps = config_trap_problems(_root_)  # configs verl runs wrongly without a word (recipes/config_traps.py)
    try:
        check_trust_wiring(_root_)
    except ValueError as exc:
        if not traps:
            raise
        traps.insert(0, str(exc))
    if traps:
        raise ValueError("the configuration would run wrongly:\n  - " + "\n  - ".join(traps))
    return True


def register() -> None:
    """Registers the resolver with OmegaConf. Idempotent."""
    if not OmegaConf.has_resolver(RESOLVER_NAME):
        OmegaConf.register_new_resolver(RESOLVER_NAME, _resolve)


register()
