"""The trust sampler refuses a verl other than the one its private-member use was checked against (issue 28, 4), and
``parameter_sync_step`` other than 1; it starts on the verl installed here."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import verl
from omegaconf import OmegaConf
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from sophiavl.recipes.trust_sampler import TrustSampler
from sophiavl.recipes.trust_sampler_compat import (
    CHECKED_VERL_VERSION,
    check_verl_compatibility,
    verl_compatibility_problems,
)

COMMON = dict(max_off_policy_threshold=None, max_off_policy_strategy="drop", poll_interval=0.05)
KWARGS = {"trust_grpo": {}, "adv_estimator": "trust_grpo"}


def test_the_installed_verl_is_the_checked_one_and_the_real_sampler_starts():
    assert verl.__version__ == CHECKED_VERL_VERSION == "0.9.1"
    assert verl_compatibility_problems(verl.__version__, ReplayBuffer) == []
    sampler = TrustSampler(trainer_mode="sync", trainer_config={}, sampler_kwargs=OmegaConf.create(KWARGS), **COMMON)
    assert verl_compatibility_problems(verl.__version__, ReplayBuffer, sampler) == []
    assert isinstance(sampler.failure_keys, dict)


def test_another_verl_version_is_refused_naming_the_private_members_to_recheck():
    with pytest.raises(RuntimeError, match="the trust sampler cannot run on this verl") as exc:
        check_verl_compatibility("0.9.2", ReplayBuffer)
    text = str(exc.value)
    assert "verl 0.9.2 is installed" in text and "checked against verl 0.9.1" in text
    for member in (
        "ReplayBuffer._materialize_batch(partition_id, selected_prompt_uids, partition_snapshot)",
        "ReplayBuffer.failure_keys",
        "upsample_batch_to_divisible_size",
        "compute_advantage_for_multi_trajectories",
        "MetricsAggregator",
        "CHECKED_VERL_VERSION",
    ):
        assert member in text, member


class _Renamed:
    """A replay buffer whose private method took other parameters (what a verl release could do)."""

    def _materialize_batch(self, partition_id, uids, snapshot):
        return None


class _Without:
    pass


def test_a_changed_private_method_or_attribute_is_refused_even_under_the_checked_version():
    (line,) = verl_compatibility_problems(CHECKED_VERL_VERSION, _Renamed)
    assert "_Renamed._materialize_batch takes ('partition_id', 'uids', 'snapshot')" in line
    (line,) = verl_compatibility_problems(CHECKED_VERL_VERSION, _Without)
    assert "_Without has no _materialize_batch method" in line
    (line,) = verl_compatibility_problems(CHECKED_VERL_VERSION, ReplayBuffer, SimpleNamespace(failure_keys=[]))
    assert "failure_keys is not a dict" in line


@pytest.mark.parametrize("steps", [2, 4, 0, "2"])
def test_the_sampler_refuses_parameter_sync_step_other_than_one(steps):
    with pytest.raises(ValueError, match=rf"parameter_sync_step={steps}: the trust sampler needs one sample\(\)"):
        TrustSampler(
            trainer_mode="sync",
            trainer_config=OmegaConf.create({"parameter_sync_step": steps}),
            sampler_kwargs=OmegaConf.create(KWARGS),
            **COMMON,
        )
    ok = TrustSampler(
        trainer_mode="sync",
        trainer_config=OmegaConf.create({"parameter_sync_step": 1}),
        sampler_kwargs=OmegaConf.create(KWARGS),
        **COMMON,
    )
    assert ok.trainer_config.parameter_sync_step == 1
