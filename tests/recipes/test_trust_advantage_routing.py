"""The per-row record the trust sampler hands to ``trust_grpo`` outside the joint mode, used by the estimator."""

import numpy as np
import pytest
import torch

from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES, RoutedAdvantages, routed_uid_field
from sophiavl.recipes.trust_grpo_estimator import SHAPED_UIDS, compute_trust_grpo_advantage


@pytest.fixture(autouse=True)
def _fresh_records():
    ROUTED_ADVANTAGES.clear()
    SHAPED_UIDS.clear()
    yield
    ROUTED_ADVANTAGES.clear()
    SHAPED_UIDS.clear()


def test_take_finds_rows_newest_record_first_and_forgets_old_batches():
    record = RoutedAdvantages(capacity=2)
    found, values = record.take(["a_0_0"])
    assert not found.any() and np.isnan(values).all()
    record.add(["a_0_0", "a_1_0"], [0.5, -0.5])
    record.add(["a_0_0"], [0.25])  # the same key again: the newest wins
    found, values = record.take(np.array(["a_1_0", "a_0_0", "b_0_0"], dtype=object))
    assert found.tolist() == [True, True, False]
    assert values[:2].tolist() == [-0.5, 0.25]
    record.add(["c_0_0"], [1.0])  # capacity 2: the first batch is gone
    assert record.take(["a_1_0", "a_0_0", "c_0_0"])[0].tolist() == [False, True, True]


def test_routed_uid_field_carries_each_rows_key():
    field = routed_uid_field(["g_0_0", "g_1_0"])
    assert field.batch_size == torch.Size([2]) and list(field["uid"]) == ["g_0_0", "g_1_0"]


def test_estimator_uses_routed_rows_and_the_joint_path_for_the_rest():
    # rows 0 and 2 were routed (their uid field is their key); row 1 and 3 belong to a group shaped the joint way
    ROUTED_ADVANTAGES.add(["r_0_0", "r_1_0"], [1.5, -1.5])
    SHAPED_UIDS.add(["j"])
    rewards = torch.tensor([[0.0, 9.0], [0.0, 1.0], [0.0, 9.0], [0.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 1]])
    index = np.array(["r_0_0", "j", "r_1_0", "j"], dtype=object)
    adv, returns = compute_trust_grpo_advantage(rewards, mask, index=index)
    # routed values on the response tokens (the reward tensor ignored); group j: rewards 1, 0 -> +-0.5 / (sqrt(0.5) + E)
    a = 0.5 / (0.5**0.5 + 1e-6)
    expected = torch.tensor([[1.5, 1.5], [a, a], [-1.5, 0.0], [-a, -a]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.equal(adv, returns)


def test_a_row_neither_routed_nor_shaped_is_refused():
    ROUTED_ADVANTAGES.add(["r_0_0"], [1.0])
    with pytest.raises(RuntimeError, match="did not shape"):
        compute_trust_grpo_advantage(torch.zeros(2, 2), torch.ones(2, 2), index=["r_0_0", "r"])
