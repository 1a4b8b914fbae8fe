"""The trust sampler against a real TransferQueue on a local CPU Ray (one module-scoped cluster).

Trajectories are written the way verl 0.9.1's ``AgentLoopWorkerTQ`` writes them: key ``{uid}_{session}_{index}``,
per-token ``rm_scores`` with ``Ro`` on the last response token, ``extra_fields["reward_extra_info"]`` carrying the
reward manager's extra keys, and a prompt key ``{uid}`` tagged ``finished``.
"""

import math
import re
from pathlib import Path

import pytest
import ray
import torch
import transfer_queue as tq
from omegaconf import OmegaConf
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

from sophiavl.recipes.trust_advantage_routing import SESSION_OUTPUTS
from sophiavl.recipes.trust_grpo_estimator import PAD_ADV_MAX, PAD_ROWS, SHAPED_UIDS, compute_trust_grpo_advantage
from sophiavl.recipes.trust_sampler import TrustSampler
from sophiavl.rewards.trm.codes import ERROR_NAMES, error_kind
from sophiavl_testing.markdown import section_tables

NAN = float("nan")
ISSUE_RO = [1, 1, 1, 0, 0, 0, 0, 0]
ISSUE_RT = [0.6, 0.5, 0.7, 0.8, 0.9, 0.2, 0.7, 0.6]


@pytest.fixture(scope="module")
def tq_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="sophiavl_trust_test")
    tq.init(
        OmegaConf.create(
            {"controller": {"polling_mode": True}, "backend": {"SimpleStorage": {"num_data_storage_units": 1}}}
        )
    )
    yield
    if started:  # a cluster someone else started keeps its TransferQueue
        tq.close()
        ray.shutdown()


def make_sampler(endpoint=None, semantics="paper", anneal_T=1500, max_failure_rate=0.2):
    kwargs = OmegaConf.create(
        {
            "trust_grpo": {"semantics": semantics, "anneal_T": anneal_T, "check_wiring": True},
            "adv_estimator": "trust_grpo",
            "max_failure_rate": max_failure_rate,
            "rm_endpoint": endpoint,
        }
    )
    return TrustSampler(
        trainer_mode="sync",
        trainer_config={},
        max_off_policy_threshold=None,
        max_off_policy_strategy="drop",
        sampler_kwargs=kwargs,
        poll_interval=0.05,
    )


def put_group(uid, partition, responses, lengths=None, sessions=None, group_status="finished", outputs=None):
    """responses: list of dicts with outcome/thinking/status/error/latency (thinking NaN allowed); sessions: their
    session ids (default 0..); group_status: the prompt's tag, "failure" when some session raised (verl then writes
    the surviving sessions only); outputs: each response's output index within its session (default 0; a multi-turn
    agent loop writes several outputs per session, keyed {uid}_{session}_{index})."""
    for slot, resp in enumerate(responses):
        session = sessions[slot] if sessions else slot
        output = outputs[slot] if outputs else 0
        length = lengths[slot] if lengths else 3 + session % 4
        rm = torch.zeros(length)
        rm[-1] = resp["outcome"]
        info = {
            "outcome": resp["outcome"],
            "thinking": resp.get("thinking", NAN),
            "thinking_status": resp.get("status", 0),
            "thinking_error": resp.get("error", 0),
            "format_ok": 1.0,
            "rm_latency_s": resp.get("latency", 0.0),
        }
        info.update(resp.get("extra", {}))  # e.g. the judge sample keys thinking_sample_{j}
        for drop in resp.get("drop", ()):
            info.pop(drop)
        field = {
            "uid": uid,
            "prompts": torch.tensor([11, 12]),
            "responses": torch.arange(length) + 100 * session,
            "response_mask": torch.ones(length, dtype=torch.int64),
            "rm_scores": rm,
            "extra_fields": {"reward_extra_info": info, "min_global_steps": 1, "max_global_steps": 1},
            "global_steps": 1,
        }
        tq.kv_batch_put(
            keys=[f"{uid}_{session}_{output}"],
            partition_id=partition,
            fields=list_of_dict_to_tensordict([field]),
            tags=[{"status": "success", "global_steps": 1, "seq_len": 2 + length, "min_global_steps": 1,
                   "max_global_steps": 1}],
        )  # fmt: skip
    tq.kv_put(key=uid, partition_id=partition, tag={"is_prompt": True, "status": group_status, "global_steps": 1})


def read(keys, partition, fields):
    return tq.kv_batch_get(keys=keys, partition_id=partition, select_fields=fields)


def row_sums(rm_scores):
    if rm_scores.is_nested:
        return [float(t.sum()) for t in rm_scores.unbind()]
    return rm_scores.sum(dim=-1).tolist()


def clear_partition(partition):
    listed = tq.kv_list(partition) or {}
    keys = list(listed.get(partition, listed).keys()) if listed else []
    if keys:
        tq.kv_clear(keys=keys, partition_id=partition)


def test_training_batch_is_shaped(tq_cluster):
    SHAPED_UIDS.clear()
    lat = iter(range(1, 11))  # the 10 judged responses take 1..10 s
    put_group(
        "ga", "train", [dict(outcome=o, thinking=t, latency=next(lat)) for o, t in zip(ISSUE_RO, ISSUE_RT, strict=True)]
    )
    put_group(
        "gb",
        "train",
        [dict(outcome=1, status=2, error=503, latency=next(lat)), dict(outcome=0, thinking=0.9, latency=next(lat))],
    )
    before = read([f"ga_{i}_0" for i in range(8)] + ["gb_0_0", "gb_1_0"], "train", ["responses", "extra_fields"])

    batch, metrics = make_sampler().sample(global_steps=100, partition_id="train", batch_size=2)
    keys = sorted(batch.keys)
    assert keys == sorted([f"ga_{i}_0" for i in range(8)] + ["gb_0_0", "gb_1_0"])
    after = read(keys, "train", ["rm_scores", "responses", "extra_fields"])

    # step 100, T 1500: alpha_t = 0.3 * exp(-100/1500) = 0.28065209550948534
    a = 0.28065209550948534
    w = 0.9607894391523232 * a  # ga: gamma = exp(0.6 - 0.64)
    expected = {f"ga_{i}_0": o + w * t for i, (o, t) in enumerate(zip(ISSUE_RO, ISSUE_RT, strict=True))}
    expected["gb_0_0"] = 1.0  # failed judgement: no bonus
    expected["gb_1_0"] = 0.9 * a  # gb: correct side has no usable score -> gamma = 1
    for key, total in zip(keys, row_sums(after["rm_scores"]), strict=True):
        assert total == pytest.approx(expected[key], abs=1e-6), key
    # the reward stays on the last token, zeros elsewhere
    for row in after["rm_scores"].unbind():
        assert torch.all(row[:-1] == 0)
    # other fields untouched
    order = {k: i for i, k in enumerate([f"ga_{i}_0" for i in range(8)] + ["gb_0_0", "gb_1_0"])}
    for j, key in enumerate(keys):
        assert torch.equal(after["responses"][j], before["responses"][order[key]])
    assert [e["reward_extra_info"]["outcome"] for e in list(after["extra_fields"])] == [
        list(before["extra_fields"])[order[k]]["reward_extra_info"]["outcome"] for k in keys
    ]

    assert metrics["trust/alpha_t"] == pytest.approx(a)
    assert metrics["trust/gamma_mean"] == pytest.approx((0.9607894391523232 + 1) / 2)
    assert metrics["trust/downweighted_share"] == 0.5
    assert metrics["trust/no_thinking_share"] == 0.0
    assert metrics["trust/thinking_missing_share"] == pytest.approx(0.1)  # 1 of 10
    assert metrics["trust/thinking_correct_mean"] == pytest.approx(0.6)  # 0.6, 0.5, 0.7 (gb's failed one left out)
    assert metrics["trust/thinking_wrong_mean"] == pytest.approx((3.2 + 0.9) / 6)
    assert metrics["trust/rm_failed_count"] == 1 and metrics["trust/rm_error_http_count"] == 1
    assert metrics["trust/rm_failed_share"] == pytest.approx(0.1)
    assert metrics["trust/rm_latency_mean_s"] == pytest.approx(5.5)
    assert metrics["trust/rm_latency_p95_s"] == pytest.approx(9.55)  # 9 + 0.55 * (10 - 9), linear interpolation

    # the estimator accepts the shaped groups
    assert not SHAPED_UIDS.missing(["ga", "gb"])
    compute_trust_grpo_advantage(torch.zeros(2, 3), torch.ones(2, 3), index=["ga", "gb"])
    tq.kv_clear(keys=keys, partition_id="train")


def test_validation_is_untouched(tq_cluster):
    put_group("gv", "val", [dict(outcome=1, thinking=0.9), dict(outcome=0, thinking=0.1, status=1)])
    batch, metrics = make_sampler().sample(global_steps=5, partition_id="val", batch_size=1)
    assert sorted(batch.keys) == ["gv_0_0", "gv_1_0"]
    assert row_sums(read(sorted(batch.keys), "val", ["rm_scores"])["rm_scores"]) == [1.0, 0.0]
    assert not any(k.startswith("trust/") for k in metrics)
    assert SHAPED_UIDS.missing(["gv"]) == {"gv"}
    tq.kv_clear(keys=batch.keys, partition_id="val")


def test_official_skips_and_equal_lengths(tq_cluster):
    # equal response lengths: TransferQueue returns a dense rm_scores tensor instead of a nested one
    put_group(
        "go",
        "train",
        [
            dict(outcome=1, thinking=0.2),
            dict(outcome=0.3, thinking=0.8),
            dict(outcome=0.1, status=1),
            dict(outcome=0.3, thinking=0.6),
        ],
        lengths=[4, 4, 4, 4],
    )
    batch, metrics = make_sampler(semantics="official", anneal_T=12000).sample(1200, "train", 1)
    keys = sorted(batch.keys)
    # alpha_t = 0.3 * exp(-0.1) = 0.27145122541078786 ; Ro = 0.1 -> Rt := 0 ; mu_c = 0.2,
    # mu_w = (0.8 + 0 + 0.6)/3 = 0.4666666666666667 -> gamma = exp(0.2 - 0.4666666666666667) = exp(-0.2666666666666667)
    w = 0.27145122541078786 * 0.7659283383646487
    sums = row_sums(read(keys, "train", ["rm_scores"])["rm_scores"])
    assert sums == pytest.approx([1 + 0.2 * w, 0.3 + 0.8 * w, 0.1, 0.3 + 0.6 * w], abs=1e-6)
    assert metrics["trust/rm_skipped_count"] == 1 and metrics["trust/rm_requested_count"] == 3
    assert metrics["trust/thinking_missing_share"] == 0.0
    tq.kv_clear(keys=keys, partition_id="train")


def test_failure_rate_stops_the_run(tq_cluster):
    put_group(
        "gf",
        "train",
        [
            dict(outcome=1, status=2, error=-1),
            dict(outcome=0, status=2, error=503),
            dict(outcome=1, thinking=0.5),
            dict(outcome=0, status=2, error=-2),
        ],
    )
    with pytest.raises(RuntimeError) as exc:
        make_sampler(endpoint="http://judge:8000/v1").sample(3, "train", 1)
    text = str(exc.value)
    assert "http://judge:8000/v1" in text and "3 of 4" in text
    assert "last error: connection error" in text and "max_failure_rate=0.2" in text
    # nothing was written
    keys = [f"gf_{i}_0" for i in range(4)]
    assert row_sums(read(keys, "train", ["rm_scores"])["rm_scores"]) == [1.0, 0.0, 1.0, 0.0]
    tq.kv_clear(keys=keys, partition_id="train")

    put_group("gg", "train", [dict(outcome=1, status=2, error=-3), dict(outcome=0, thinking=0.5)])
    with pytest.raises(RuntimeError, match="verl-managed reward model.*unparseable reply"):
        make_sampler(endpoint=None).sample(3, "train", 1)
    tq.kv_clear(keys=["gg_0_0", "gg_1_0"], partition_id="train")


def test_missing_extra_key_is_reported(tq_cluster):
    put_group("gm", "train", [dict(outcome=1, thinking=0.5, drop=("thinking_status",)), dict(outcome=0, thinking=0.5)])
    with pytest.raises(RuntimeError, match=r"reward_extra_info\['thinking_status'\]"):
        make_sampler().sample(3, "train", 1)
    tq.kv_clear(keys=["gm_0_0", "gm_1_0"], partition_id="train")


def test_sampler_rejects_unknown_estimator_and_async_mode():
    kwargs = OmegaConf.create({"trust_grpo": {}, "adv_estimator": "trust_grpx"})
    common = dict(trainer_config={}, max_off_policy_threshold=None, max_off_policy_strategy="drop")
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        TrustSampler(trainer_mode="sync", sampler_kwargs=kwargs, **common)
    with pytest.raises(ValueError, match="trainer_mode=sync"):
        TrustSampler(trainer_mode="colocate_async", sampler_kwargs=OmegaConf.create({}), **common)


# ------------------------------------------------------------------------------------ trust modes (issue 12)
def mode_sampler(trust):
    kwargs = OmegaConf.create(
        {
            "trust_grpo": {"trust": trust, "anneal": "none", "check_wiring": True},  # alpha_t = 0.3
            "adv_estimator": "trust_grpo",
            "max_failure_rate": 0.5,
            "rm_endpoint": None,
        }
    )
    common = dict(trainer_config={}, max_off_policy_threshold=None, max_off_policy_strategy="drop", poll_interval=0.05)
    return TrustSampler(trainer_mode="sync", sampler_kwargs=kwargs, **common)


def samples_of(values):
    return {f"thinking_sample_{j}": v for j, v in enumerate(values)}


def test_variance_mode_reads_the_judge_samples(tq_cluster):
    # r0 [0.6, 0.7, 0.8]: mean 0.7, var 1/150 ; r1 [0.5, 0.5, 0.9]: mean 1.9/3, var 8/225 ;
    # r2 [nan, 0.4, 0.4]: mean 0.4, var 0 ; r3: failed judgement (status 2): no bonus whatever its samples say
    put_group(
        "gk",
        "train",
        [
            dict(outcome=1, thinking=0.7, extra=samples_of([0.6, 0.7, 0.8])),
            dict(outcome=0, thinking=1.9 / 3, extra=samples_of([0.5, 0.5, 0.9])),
            dict(outcome=1, thinking=0.4, extra=samples_of([NAN, 0.4, 0.4])),
            dict(outcome=0, status=2, error=-3, extra=samples_of([NAN, NAN, 0.9])),
        ],
        lengths=[3, 4, 5, 6],
    )
    batch, metrics = mode_sampler("variance").sample(7, "train", 1)
    keys = sorted(batch.keys)
    g0, g1 = 0.9933555062550344, 0.9650691177896804  # exp(-1/150), exp(-8/225)
    sums = row_sums(read(keys, "train", ["rm_scores"])["rm_scores"])
    assert sums == pytest.approx([1 + g0 * 0.3 * 0.7, g1 * 0.3 * 1.9 / 3, 1 + 0.3 * 0.4, 0.0], abs=1e-6)
    assert metrics["trust/gamma_mean"] == pytest.approx((g0 + g1 + 1.0) / 3)
    assert metrics["trust/thinking_variance_mean"] == pytest.approx((1 / 150 + 8 / 225 + 0.0) / 3)
    assert metrics["trust/gamma_response_mean"] == pytest.approx((g0 + g1 + 1.0) / 3)
    assert metrics["trust/downweighted_share"] == 1.0
    assert metrics["trust/rm_sample_failed_share"] == pytest.approx(1 / 9)  # r2's nan among 3 x 3 judged samples
    tq.kv_clear(keys=keys, partition_id="train")


def test_off_mode_has_gamma_one(tq_cluster):
    # reward times: response i handed over at 1000 + i, ready 1 s later, except response 2, ready at 1012
    times = [{"reward_begin_t": 1000.0 + i, "reward_end_t": 1012.0 if i == 2 else 1001.0 + i} for i in range(8)]
    put_group(
        "gz",
        "train",
        [dict(outcome=o, thinking=t, extra=x) for o, t, x in zip(ISSUE_RO, ISSUE_RT, times, strict=True)],
    )
    batch, metrics = mode_sampler("off").sample(9, "train", 1)
    # last rollout handed over at 1007, last reward ready at 1012: 5 s of waiting for rewards
    assert metrics["trust/reward_tail_s"] == pytest.approx(5.0)
    keys = sorted(batch.keys)
    sums = row_sums(read(keys, "train", ["rm_scores"])["rm_scores"])
    # gamma = 1 although mu_c = 0.6 < mu_w = 0.64: R = Ro + 0.3 * Rt
    assert sums == pytest.approx([o + 0.3 * t for o, t in zip(ISSUE_RO, ISSUE_RT, strict=True)], abs=1e-6)
    assert metrics["trust/gamma_mean"] == 1.0 and metrics["trust/downweighted_share"] == 0.0
    assert "trust/thinking_variance_mean" not in metrics
    tq.kv_clear(keys=keys, partition_id="train")


def test_inconsistent_sample_keys_are_reported(tq_cluster):
    # whichever trajectory comes first, one without the sample keys is reported
    for uid, first in (("gi", dict(outcome=1, thinking=0.5, extra=samples_of([0.5, 0.5]))), ("gj", dict(outcome=1))):
        second = dict(outcome=0) if "extra" in first else dict(outcome=0, thinking=0.5, extra=samples_of([0.5, 0.5]))
        put_group(uid, "train", [first, second])
        with pytest.raises(RuntimeError, match="same reward_extra_info keys"):
            mode_sampler("variance").sample(3, "train", 1)
        tq.kv_clear(keys=[f"{uid}_0_0", f"{uid}_1_0"], partition_id="train")


# ------------------------------------------------------------------------- advantage modes (issue 19): routing
def variant_sampler(adv_estimator="trust_grpo", **trust):
    kwargs = OmegaConf.create(
        {
            "trust_grpo": {"trust": "off", "anneal": "none", "alpha": 0.5, "check_wiring": True, **trust},
            "adv_estimator": adv_estimator,
            "max_failure_rate": 0.5,
            "rm_endpoint": None,
        }
    )
    common = dict(trainer_config={}, max_off_policy_threshold=None, max_off_policy_strategy="drop", poll_interval=0.05)
    return TrustSampler(trainer_mode="sync", sampler_kwargs=kwargs, **common)


def verl_advantages(batch):
    """What verl 0.9.1's PPOTrainer._compute_advantage does with a sampled batch (no KL in the reward)."""
    import numpy as np
    from verl import DataProto
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(ADV_FIELDS))
    data = DataProto(batch=data.to_padded_tensor())
    data.batch["token_level_rewards"] = data.batch["rm_scores"]
    data.non_tensor_batch["uid"] = np.array(data.batch.pop("uid").tolist(), dtype=object)
    algo = OmegaConf.create({"adv_estimator": "trust_grpo", "norm_adv_by_std_in_grpo": True})
    out = compute_advantage_for_multi_trajectories(
        data, batch_keys=batch.keys, adv_estimator="trust_grpo", num_repeat=4, config=algo
    )
    return out.batch["advantages"], out.batch["response_mask"]


ADV_FIELDS = ("uid", "response_mask", "rm_scores")


def test_decoupled_mode_routes_each_rows_advantage_through_verls_path(tq_cluster):
    from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES

    SHAPED_UIDS.clear()
    ROUTED_ADVANTAGES.clear()
    # group ra: Ro 1, 1, 0, 0 ; Rt 0.8, 0.4, 0.6, failed ; group rb: all wrong with equal scores
    put_group(
        "ra",
        "train",
        [dict(outcome=1, thinking=0.8), dict(outcome=1, thinking=0.4), dict(outcome=0, thinking=0.6),
         dict(outcome=0, status=2, error=503)],
        lengths=[3, 3, 4, 5],
    )  # fmt: skip
    put_group("rb", "train", [dict(outcome=0, thinking=0.3), dict(outcome=0, thinking=0.3)], lengths=[3, 4])
    batch, metrics = variant_sampler(normalize="decoupled").sample(4, "train", 2)

    # rm_scores keeps the combined reward Ro + 0.5 Rt' (critic/score); the uid field now names the row
    keys = sorted(batch.keys)
    fields = read(keys, "train", ["rm_scores", "uid"])
    assert row_sums(fields["rm_scores"]) == pytest.approx([1.4, 1.2, 0.3, 0.0, 0.15, 0.15], abs=1e-6)
    assert list(fields["uid"]) == keys

    # by hand: z(Ro) = +-0.5 / (sqrt(1/3) + E); z_u(Rt) = 0.2 / (0.2 + E) * (1, -1, 0), the failed one 0; group rb 0;
    # then whitened over the 6 responses (mean 0)
    eps = 1e-6
    z, zt = 0.5 / ((1 / 3) ** 0.5 + eps), 0.2 / (0.2 + eps)
    raw = {"ra_0_0": z + 0.5 * zt, "ra_1_0": z - 0.5 * zt, "ra_2_0": -z, "ra_3_0": -z, "rb_0_0": 0.0, "rb_1_0": 0.0}
    std = (sum(a * a for a in raw.values()) / 5) ** 0.5
    expected = {k: a / (std + eps) for k, a in raw.items()}

    # the trainer pads and reorders rows for balancing: here, reversed
    batch.reorder(list(range(len(batch.keys)))[::-1])
    adv, mask = verl_advantages(batch)
    for row, key in enumerate(batch.keys):
        assert torch.allclose(adv[row], expected[key] * mask[row].to(adv.dtype), atol=1e-6), key
    assert metrics["trust/adv_outcome_abs_mean"] == pytest.approx(4 * z / 6)
    assert metrics["trust/adv_thinking_abs_mean"] == pytest.approx(2 * 0.5 * zt / 6)
    assert metrics["trust/zero_adv_share"] == pytest.approx(2 / 6)
    assert metrics["trust/reward_mean"] == pytest.approx((1.4 + 1.2 + 0.3 + 0 + 0.15 + 0.15) / 6)

    # a row that reached the estimator with its group uid (never routed, never recorded as shaped) is refused, and
    # the message says the sampler ran, in a routed mode, and what went wrong (not "it is missing")
    with pytest.raises(RuntimeError, match="did not shape") as exc:
        compute_trust_grpo_advantage(torch.zeros(1, 3), torch.ones(1, 3), index=["ra"])
    assert "ran in this process in a routed mode" in str(exc.value)
    assert "is not a row key: the sampler's uid rewrite did not reach them" in str(exc.value)
    assert "it is missing" not in str(exc.value)
    tq.kv_clear(keys=keys, partition_id="train")
    ROUTED_ADVANTAGES.clear()


def test_gate_in_joint_mode_writes_the_gated_reward_and_keeps_the_uids(tq_cluster):
    SHAPED_UIDS.clear()
    put_group("rp", "train", [dict(outcome=1, thinking=0.8), dict(outcome=0, thinking=0.6)], lengths=[3, 4])
    batch, metrics = variant_sampler(gate="correct").sample(4, "train", 1)
    keys = sorted(batch.keys)
    fields = read(keys, "train", ["rm_scores", "uid"])
    # R' = 1 + 0.5 * 0.8 and 0 (the wrong response's thinking reward is gated off); uids untouched
    assert row_sums(fields["rm_scores"]) == pytest.approx([1.4, 0.0], abs=1e-6)
    assert list(fields["uid"]) == ["rp", "rp"]
    adv, mask = verl_advantages(batch)  # the joint path: +-0.7 / (sqrt(0.98) + E), std of {1.4, 0}
    a = 0.7 / (0.98**0.5 + 1e-6)
    signs = {"rp_0_0": 1.0, "rp_1_0": -1.0}
    for row, key in enumerate(batch.keys):
        assert torch.allclose(adv[row], signs[key] * a * mask[row].to(adv.dtype), atol=1e-6)
    # parts: Ro +-0.5 and bonus +-0.2 over the same std
    assert metrics["trust/adv_outcome_abs_mean"] == pytest.approx(0.5 / (0.98**0.5 + 1e-6))
    assert metrics["trust/adv_thinking_abs_mean"] == pytest.approx(0.2 / (0.98**0.5 + 1e-6))
    assert metrics["trust/zero_adv_share"] == 0.0
    tq.kv_clear(keys=keys, partition_id="train")


def test_routing_modes_refuse_another_estimator():
    kwargs = OmegaConf.create({"trust_grpo": {"normalize": "papo"}, "adv_estimator": "grpo"})
    common = dict(trainer_config={}, max_off_policy_threshold=None, max_off_policy_strategy="drop")
    with pytest.raises(ValueError, match="adv_estimator=grpo would see one group per row"):
        TrustSampler(trainer_mode="sync", sampler_kwargs=kwargs, **common)


# ------------------------------------------------------------------ failed sessions and verl's pad rows (issue 17)
def verl_trainer(dp_size, mini_batch, n, adv_estimator="trust_grpo"):
    """The parts of verl's PPOTrainer that _balance_batch and _compute_advantage read, around verl's own methods."""
    from types import MethodType, SimpleNamespace

    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    config = OmegaConf.create(
        {
            "algorithm": {"adv_estimator": adv_estimator, "use_kl_in_reward": False, "gamma": 1.0, "lam": 1.0},
            "actor_rollout_ref": {"rollout": {"n": n}, "actor": {"ppo_mini_batch_size": mini_batch}},
            "trainer": {"critic_warmup": 0},
        }
    )
    trainer = SimpleNamespace(
        config=config,
        use_critic=False,
        global_steps=100,
        tokenizer=SimpleNamespace(eos_token_id=7),
        actor_rollout_wg=SimpleNamespace(_dispatch_info={"actor": list(range(dp_size))}),
    )
    trainer._get_required_batch_multiple = MethodType(PPOTrainer._get_required_batch_multiple, trainer)
    trainer.balance = MethodType(PPOTrainer._balance_batch, trainer)
    trainer.advantage = MethodType(PPOTrainer._compute_advantage, trainer)
    return trainer


def test_failed_sessions_and_pad_rows_through_verl(tq_cluster):
    """A group whose session 2 raised (3 of 4 rows survive), a whole group and a group whose every session raised;
    verl pads the 5 rows to its batch multiple lcm(dp 2, mini-batch 2 x n 4) = 8 with its own padding function, and
    its own advantage step runs trust_grpo on the padded batch."""
    SHAPED_UIDS.clear()
    PAD_ROWS.clear()
    PAD_ADV_MAX.clear()
    put_group(
        "gp",
        "train",
        [dict(outcome=1, thinking=0.8), dict(outcome=0, thinking=0.6), dict(outcome=1, thinking=0.2)],
        sessions=[0, 1, 3],
        group_status="failure",
    )
    put_group("gq", "train", [dict(outcome=1, thinking=0.5), dict(outcome=0, thinking=0.5)])
    tq.kv_put(key="gl", partition_id="train", tag={"is_prompt": True, "status": "failure", "global_steps": 1})

    batch, metrics = make_sampler().sample(global_steps=100, partition_id="train", batch_size=3)
    assert sorted(batch.keys) == ["gp_0_0", "gp_1_0", "gp_3_0", "gq_0_0", "gq_1_0"]
    assert metrics["trust/session_failed_groups"] == 2.0  # gp and gl
    assert metrics["trust/session_lost_groups"] == 1.0  # gl: no row at all
    # gp is shaped from its survivors: mu_c = (0.8 + 0.2) / 2 = 0.5 < mu_w = 0.6 -> gamma = exp(-0.1)
    # alpha_t = 0.3 * exp(-100 / 1500) = 0.28065209550948533; w = gamma * alpha_t = 0.2539445174671842
    w, a = 0.2539445174671842, 0.28065209550948533
    keys = sorted(batch.keys)
    shaped = dict(zip(keys, row_sums(read(keys, "train", ["rm_scores"])["rm_scores"]), strict=True))
    assert shaped == pytest.approx(
        {"gp_0_0": 1 + 0.8 * w, "gp_1_0": 0.6 * w, "gp_3_0": 1 + 0.2 * w, "gq_0_0": 1 + 0.5 * a, "gq_1_0": 0.5 * a},
        abs=1e-6,
    )
    assert metrics["trust/gamma_mean"] == pytest.approx((0.9048374180359595 + 1) / 2)
    assert torch.isnan(metrics["trust/pad_adv_abs_max"])  # verl has not padded nor computed advantages yet

    trainer = verl_trainer(dp_size=2, mini_batch=2, n=4)
    step_metrics = {}
    padded = trainer.balance(batch, metrics=step_metrics)
    pads = [k for k, tag in zip(padded.keys, padded.tags, strict=True) if tag.get("is_padding")]
    assert len(padded.keys) == 8 and len(pads) == 3
    trainer.advantage(padded, metrics=step_metrics)
    out = read(padded.keys, "train", ["uid", "advantages"])
    adv = {k: t for k, t in zip(padded.keys, out["advantages"].unbind(), strict=True)}
    # gp: R = [1.2031556139737474, 0.15236671048031053, 1.0507889034934368], mean 0.802103742649165,
    # unbiased std 0.5678226499923553 -> (R - mean) / (std + 1e-6); gq: R = 1 + 0.5a, 0.5a -> +-0.5 / (sqrt(0.5) + 1e-6)
    expected = {"gp_0_0": 0.706296525919591, "gp_1_0": -1.1442584897222965, "gp_3_0": 0.43796196380270513,
                "gq_0_0": 0.7071057811879616, "gq_1_0": -0.7071057811879619}  # fmt: skip
    for key, value in expected.items():
        assert adv[key].tolist() == pytest.approx([value] * adv[key].numel(), abs=1e-5), key
    for key in pads:
        assert key.startswith("pad") and adv[key].abs().sum() == 0

    # the pad count reaches verl's step metrics through its own aggregator, read after the advantages
    from verl.trainer.ppo.v1.utils import MetricsAggregator

    aggregator = MetricsAggregator()
    aggregator.add_step_metrics({**metrics, **step_metrics}, sample_count=5)
    aggregated = aggregator.get_aggregated_metrics()
    assert aggregated["trust/pad_rows"] == 3.0
    # and the largest |advantage| the estimator handed verl on those pad rows (before: unknown, NaN)
    assert aggregated["trust/pad_adv_abs_max"] == 0.0
    tq.kv_clear(keys=padded.keys, partition_id="train")


def test_pad_rows_without_failures_and_nan_before_the_estimator(tq_cluster):
    SHAPED_UIDS.clear()
    PAD_ROWS.clear()
    put_group("gw", "train", [dict(outcome=1, thinking=0.5), dict(outcome=0, thinking=0.5)])
    batch, metrics = make_sampler().sample(global_steps=100, partition_id="train", batch_size=1)
    assert metrics["trust/session_failed_groups"] == 0.0 and metrics["trust/session_lost_groups"] == 0.0
    assert torch.isnan(metrics["trust/pad_rows"])  # verl has not padded yet: unknown, not 0
    trainer = verl_trainer(dp_size=1, mini_batch=1, n=2)
    trainer.advantage(trainer.balance(batch, metrics={}), metrics={})
    assert float(metrics["trust/pad_rows"]) == 0.0
    tq.kv_clear(keys=batch.keys, partition_id="train")


def test_off_mode_with_three_judge_samples(tq_cluster):
    """trust=off with K = 3 judge samples (sophiavl_variance's samples with the trust weight off): Rt is the mean of
    the usable samples and every gamma is 1, although the group trust would have down-weighted this group."""
    put_group(
        "gs",
        "train",
        [
            dict(outcome=1, thinking=0.5, extra=samples_of([0.2, 0.4, 0.9])),  # Rt = 0.5
            dict(outcome=0, thinking=0.9, extra=samples_of([0.9, 0.9, NAN])),  # Rt = 0.9 (one sample failed)
            dict(outcome=0, thinking=0.3, extra=samples_of([0.1, 0.3, 0.5])),  # Rt = 0.3
        ],
    )
    batch, metrics = mode_sampler("off").sample(4, "train", 1)
    keys = sorted(batch.keys)
    # mu_c = 0.5 < mu_w = 0.6 (group trust: gamma = exp(-0.1)), but off: R = Ro + 0.3 * Rt
    sums = row_sums(read(keys, "train", ["rm_scores"])["rm_scores"])
    assert sums == pytest.approx([1 + 0.3 * 0.5, 0.3 * 0.9, 0.3 * 0.3], abs=1e-6)
    assert metrics["trust/gamma_mean"] == 1.0 and metrics["trust/downweighted_share"] == 0.0
    assert metrics["trust/thinking_mean"] == pytest.approx((0.5 + 0.9 + 0.3) / 3)
    assert metrics["trust/rm_sample_failed_share"] == pytest.approx(1 / 9)
    assert "trust/thinking_variance_mean" not in metrics
    tq.kv_clear(keys=keys, partition_id="train")


def test_papo_mode_through_verls_padding(tq_cluster):
    """A routed mode (papo) meets verl's pad rows: the 3 real rows keep the sampler's advantages, verl's pad row gets
    0 and is counted in trust/pad_rows (before the estimator ran: NaN)."""
    from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES

    SHAPED_UIDS.clear()
    PAD_ROWS.clear()
    ROUTED_ADVANTAGES.clear()
    put_group(
        "gz", "train", [dict(outcome=1, thinking=0.8), dict(outcome=1, thinking=0.4), dict(outcome=0, thinking=0.6)]
    )
    batch, metrics = variant_sampler(normalize="papo").sample(4, "train", 1)
    assert torch.isnan(metrics["trust/pad_rows"])
    trainer = verl_trainer(dp_size=2, mini_batch=2, n=2)  # batch multiple lcm(2, 2 x 2) = 4: one pad row
    padded = trainer.balance(batch, metrics={})
    pads = [k for k, tag in zip(padded.keys, padded.tags, strict=True) if tag.get("is_padding")]
    assert len(padded.keys) == 4 and len(pads) == 1
    trainer.advantage(padded, metrics={})
    out = read(padded.keys, "train", ["advantages"])
    adv = {k: t for k, t in zip(padded.keys, out["advantages"].unbind(), strict=True)}
    # by hand: z(Ro) over (1, 1, 0): mean 2/3, unbiased std sqrt(1/3) -> (1/3, 1/3, -2/3) / (sqrt(1/3) + E);
    # z_c over the correct ones' Rt (0.8, 0.4): mean 0.6, unbiased std sqrt(0.08) -> +-0.2 / (sqrt(0.08) + E),
    # the wrong response 0; w = alpha 0.5 (trust off, no annealing); no whitening in papo mode
    eps = 1e-6
    s, sc = (1 / 3) ** 0.5 + eps, 0.08**0.5 + eps
    expected = {"gz_0_0": (1 / 3) / s + 0.5 * 0.2 / sc, "gz_1_0": (1 / 3) / s - 0.5 * 0.2 / sc, "gz_2_0": -(2 / 3) / s}
    for key, value in expected.items():
        assert adv[key].tolist() == pytest.approx([value] * adv[key].numel(), abs=1e-5), key
    assert adv[pads[0]].abs().sum() == 0
    assert float(metrics["trust/pad_rows"]) == 1.0
    assert float(metrics["trust/pad_adv_abs_max"]) == 0.0
    tq.kv_clear(keys=padded.keys, partition_id="train")
    ROUTED_ADVANTAGES.clear()


def test_routed_mode_without_pad_rows_reports_zero(tq_cluster):
    from sophiavl.recipes.trust_advantage_routing import ROUTED_ADVANTAGES

    SHAPED_UIDS.clear()
    PAD_ROWS.clear()
    ROUTED_ADVANTAGES.clear()
    put_group("gy", "train", [dict(outcome=1, thinking=0.8), dict(outcome=0, thinking=0.6)])
    batch, metrics = variant_sampler(normalize="decoupled").sample(4, "train", 1)
    trainer = verl_trainer(dp_size=1, mini_batch=1, n=2)
    trainer.advantage(trainer.balance(batch, metrics={}), metrics={})
    assert float(metrics["trust/pad_rows"]) == 0.0
    tq.kv_clear(keys=batch.keys, partition_id="train")
    ROUTED_ADVANTAGES.clear()


# ------------------------------------------------------------------------ multi-output sessions (issue 28, point 1)
def advantages_by_key(trainer, batch):
    """verl's _balance_batch and _compute_advantage on ``batch``; the advantage row of every real key."""
    padded = trainer.balance(batch, metrics={})
    trainer.advantage(padded, metrics={})
    out = read(padded.keys, "train", ["advantages"])["advantages"].unbind()
    return {k: t for k, t in zip(padded.keys, out, strict=True) if not k.startswith("pad")}


def test_joint_mode_equals_verls_grpo_on_multi_output_sessions(tq_cluster):
    """Issue 28's repro: keys {uid}_0_0, {uid}_0_1, {uid}_1_0, {uid}_2_0 with R = [1, 1, 0, 0.5] (trust off and
    Rt = 0: R = Ro). verl's grpo normalises each session's last output (R 1, 0, 0.5: mean 0.5, unbiased std 0.5)
    and gives session 0's output 0 the advantage of its output 1: [1, 1, -1, 0] (over 0.5 + E). The same rows go
    through verl's own advantage step twice: under trust_grpo, and under verl's grpo (a sampler built for it)."""
    SHAPED_UIDS.clear()
    SESSION_OUTPUTS.clear()
    rows = [dict(outcome=1, thinking=0.0), dict(outcome=1, thinking=0.0), dict(outcome=0, thinking=0.0),
            dict(outcome=0.5, thinking=0.0)]  # fmt: skip
    layout = dict(sessions=[0, 0, 1, 2], outputs=[0, 1, 0, 0], lengths=[3, 4, 3, 5])
    results = {}
    for uid, estimator in (("mj", "trust_grpo"), ("mg", "grpo")):
        put_group(uid, "train", rows, **layout)
        batch, _ = variant_sampler(adv_estimator=estimator).sample(4, "train", 1)
        assert sorted(batch.keys) == [f"{uid}_0_0", f"{uid}_0_1", f"{uid}_1_0", f"{uid}_2_0"]
        results[estimator] = advantages_by_key(
            verl_trainer(dp_size=1, mini_batch=1, n=4, adv_estimator=estimator), batch
        )
    # the trust_grpo run carries the session's rows under their keys (the estimator finds the session there); verl's
    # grpo run keeps the prompt uid, which its own grpo groups by
    assert list(read(["mj_0_0", "mj_0_1", "mj_1_0"], "train", ["uid"])["uid"]) == ["mj_0_0", "mj_0_1", "mj"]
    assert list(read(["mg_0_0", "mg_0_1"], "train", ["uid"])["uid"]) == ["mg", "mg"]
    a = 0.5 / (0.5 + 1e-6)
    expected = {"0_0": a, "0_1": a, "1_0": -a, "2_0": 0.0}
    for suffix, value in expected.items():
        ours, verls = results["trust_grpo"][f"mj_{suffix}"], results["grpo"][f"mg_{suffix}"]
        assert torch.allclose(ours, verls, atol=1e-6), suffix
        assert ours.tolist() == pytest.approx([value] * ours.numel(), abs=1e-6), suffix
    tq.kv_clear(keys=[f"{u}_{x}" for u in ("mj", "mg") for x in expected], partition_id="train")
    SESSION_OUTPUTS.clear()


def test_trust_shaping_and_the_advantage_use_each_sessions_last_output(tq_cluster):
    """Group trust on a two-output session: its first output (wrong, Rt 0.9) is neither in mu_wrong nor in the
    group's statistics; the session's outputs both take the advantage of its last one."""
    SHAPED_UIDS.clear()
    SESSION_OUTPUTS.clear()
    put_group(
        "mt",
        "train",
        [dict(outcome=0, thinking=0.9), dict(outcome=1, thinking=0.2), dict(outcome=0, thinking=0.6),
         dict(outcome=1, thinking=0.4)],
        sessions=[0, 0, 1, 2],
        outputs=[0, 1, 0, 0],
    )  # fmt: skip
    batch, metrics = mode_sampler("group").sample(4, "train", 1)
    # last outputs: Ro 1, 0, 1 with Rt 0.2, 0.6, 0.4: mu_c = 0.3 < mu_w = 0.6 -> gamma = exp(-0.3) (with the first
    # output's 0.9, mu_w would be 0.75); w = 0.3 exp(-0.3) = 0.22224546620451535; R = 1 + 0.2w, 0.6w, 1 + 0.4w
    # = 1.0444490932409032, 0.1333472797227092, 1.0888981864818061: mean 0.7555648531484728, unbiased std
    # 0.5393143443135634 -> A = (R - mean) / (std + 1e-6)
    assert metrics["trust/gamma_mean"] == pytest.approx(math.exp(-0.3))
    a0, a1, a2 = 0.5356499553338689, -1.1537175420397456, 0.6180675867058771
    adv = advantages_by_key(verl_trainer(dp_size=1, mini_batch=1, n=4), batch)
    for key, value in {"mt_0_0": a0, "mt_0_1": a0, "mt_1_0": a1, "mt_2_0": a2}.items():
        assert adv[key].tolist() == pytest.approx([value] * adv[key].numel(), abs=1e-6), key
    tq.kv_clear(keys=list(adv), partition_id="train")
    SESSION_OUTPUTS.clear()


# ------------------------------------------------------------------------------- the docs' metrics table
REPO = Path(__file__).resolve().parents[2]
TRUST_DOC = REPO / "docs" / "trust-grpo.md"


def documented_metrics() -> tuple[set[str], list[str]]:
    """The metric names of the Metrics table of docs/trust-grpo.md (without the ``trust/`` prefix) and the error
    kinds its ``rm_error_<kind>_count`` row lists."""
    in_section = section_tables(TRUST_DOC, "## Metrics")
    assert len(in_section) == 1, f"the Metrics section holds {len(in_section)} tables, not one (rows cut off?)"
    names, kinds = set(), []
    for row in in_section[0].body:  # (a row's cell count is checked in tests/docs/test_docs.py)
        row_names = re.findall(r"`([^`]+)`", row[0])
        names.update(row_names)
        if row_names == ["rm_error_<kind>_count"]:
            kinds = re.findall(r"`([a-z_]+)`", row[1])
    return names, kinds


def test_the_docs_metrics_table_lists_exactly_what_the_sampler_logs(tq_cluster):
    """A step that makes the sampler log every metric it has (variance trust with K = 2 judge samples, one failed
    judgement, reward times, the outcome scorer's flag, a failed session): each one is a row of the docs' table, and
    each row is logged."""
    PAD_ROWS.clear()
    common = {"reward_begin_t": 10.0, "reward_end_t": 11.0, "scorer_failed": 0.0}
    put_group(
        "gm",
        "train",
        [
            dict(outcome=1, thinking=0.7, extra={**samples_of([0.6, 0.8]), **common}),
            dict(outcome=0, thinking=0.4, extra={**samples_of([0.4, NAN]), **common, "scorer_failed": 1.0}),
            dict(outcome=1, status=2, error=503, extra={**samples_of([NAN, NAN]), **common}),
        ],
        sessions=[0, 1, 3],
        group_status="failure",  # session 2 raised
    )
    batch, metrics = mode_sampler("variance").sample(5, "train", 1)
    assert metrics["outcome/scorer_failed_count"] == 1.0
    logged = {key.removeprefix("trust/") for key in metrics if key.startswith("trust/")}
    logged = {re.sub(r"^rm_error_[a-z_]+_count$", "rm_error_<kind>_count", key) for key in logged}
    names, kinds = documented_metrics()
    assert logged == names, f"logged, not in the table: {logged - names}; in the table, not logged: {names - logged}"
    # the other metric the sampler logs is named under the table
    metrics_section = TRUST_DOC.read_text(encoding="utf-8").split("\n## Metrics\n")[1].split("\n## ")[0]
    assert "`outcome/scorer_failed_count`" in metrics_section
    # every kind rm_error_<kind>_count can take: any HTTP status, each negative code, an unknown one
    assert sorted(kinds) == sorted({error_kind(code) for code in (503, *ERROR_NAMES, -99)})
    tq.kv_clear(keys=batch.keys, partition_id="train")
