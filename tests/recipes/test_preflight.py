"""``python -m sophiavl.recipes.preflight``: every recipe passes at its intended size (the layouts docs/training.md and
docs/trm-training.md give), known-bad configs fail with one clear line per problem. Real Hydra composition, verl's own
checks and trainer class; no GPU, no Ray."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sophiavl.recipes.cluster_layout import padded_rows, place_pools, replica_problems
from sophiavl.recipes.preflight import main

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(p.stem for p in (REPO / "recipes" / "config" / "recipe").glob("*.yaml"))

# The layouts the docs give, as overrides of the recipe (tests/docs/test_docs.py-style commands must contain them).
ONE_NODE: tuple[str, ...] = ()
EXTERNAL_JUDGE = (
    "trainer.n_gpus_per_node=8",
    "reward.reward_model.enable=false",
    "reward.reward_model.enable_resource_pool=false",
    "reward.thinking_rm.base_url=http://judge-host:8000/v1",
)
TWO_NODES = ("trainer.n_gpus_per_node=8", "reward.reward_model.n_gpus_per_node=8")
TRAINING_LAYOUTS = {
    "one 8-GPU node": (ONE_NODE, 1),
    "8 + external judge": (EXTERNAL_JUDGE, 1),
    "two nodes": (TWO_NODES, 2),
}
#: Every recipe runs at its intended sizes (one node, two nodes); the external-judge layout only for the paper recipe
#: and the GRPO baseline (the other recipes differ from `sophiavl` in trust keys only), to keep `make test` short.
EXTERNAL_JUDGE_RECIPES = ("sophiavl", "sophiavl_grpo")
EVAL_LAYOUTS = {"one 8-GPU node": (("trainer.n_gpus_per_node=8",), 1)}
SFT_LAYOUTS = {"one 8-GPU node": ((), 1), "two nodes": (("trainer.nnodes=2", "trainer.n_gpus_per_node=8"), 2)}


def recipe_kind(name: str) -> str:
    """``sft`` for a recipe of verl's SFT trainer (it sets ``optim``), ``eval`` for a validation-only recipe, else
    ``train``."""
    top = yaml.safe_load((REPO / "recipes" / "config" / "recipe" / f"{name}.yaml").read_text()) or {}
    if "optim" in top:
        return "sft"
    return "eval" if (top.get("trainer") or {}).get("val_only") else "train"


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def layout_value(out: str, name: str) -> str:
    match = re.search(rf"^\s+{re.escape(name)}: (.*)$", out, re.M)
    assert match, out
    return match.group(1)


CASES = []
for _recipe in RECIPES:
    _kind = recipe_kind(_recipe)
    _layouts = {"train": TRAINING_LAYOUTS, "eval": EVAL_LAYOUTS, "sft": SFT_LAYOUTS}[_kind]
    CASES += [
        (_recipe, _kind, _name)
        for _name in _layouts
        if _name != "8 + external judge" or _recipe in EXTERNAL_JUDGE_RECIPES
    ]


@pytest.mark.parametrize(("recipe", "kind", "layout"), CASES, ids=[f"{r}@{n}" for r, _, n in CASES])
def test_every_recipe_passes_at_its_intended_size(capsys, recipe, kind, layout):
    overrides, nodes = {"train": TRAINING_LAYOUTS, "eval": EVAL_LAYOUTS, "sft": SFT_LAYOUTS}[kind][layout]
    entry = ["--entry", "sft"] if kind == "sft" else ["--nodes", str(nodes)]
    code, out = run(capsys, *entry, f"+recipe={recipe}", *overrides)
    assert code == 0, out
    assert "problem" not in out
    if kind == "train":
        trainer_gpus = 4 if layout == "one 8-GPU node" else 8
        prompts = 16 if recipe == "sophiavl_official" else 8
        rows = prompts * 8
        assert layout_value(out, "rows per step").startswith(f"{rows} ({prompts} prompts x 8 responses")
        assert layout_value(out, "rows per GPU").startswith(f"{rows // trainer_gpus} ")
        assert layout_value(out, "pad rows per step").startswith("0 ")
        assert layout_value(out, "optimizer steps per rollout batch").startswith("1 ")
        judged = 0 if recipe == "sophiavl_grpo" else rows
        judge = layout_value(out, "judge requests per step")
        assert judge.startswith(f"at most {judged} " if recipe == "sophiavl_official" else f"{judged} "), judge
    if kind == "sft":
        gpus = 8 * nodes
        assert layout_value(out, "rows per optimizer step") == f"128; rows per GPU: {128 // gpus}"


def test_default_layout_on_one_node(capsys):
    code, out = run(capsys, "--nodes", "1", "+recipe=sophiavl")
    assert code == 0, out
    assert "node 0: global_pool 4 GPUs, reward_pool 4 GPUs; 8/8 GPUs, 24 CPUs reserved" in out
    assert "sampler: TrustSampler; advantage estimator: trust_grpo" in out
    assert "2 vLLM replica(s) of TP 2 x DP 1 x PP 1" in out  # 4 GPUs / TP 2
    assert "4 vLLM replica(s) of TP 1 x DP 1 x PP 1" in out  # the TRM, one per GPU
    assert layout_value(out, "rows per GPU") == "16 (actor data-parallel size 4)"
    assert layout_value(out, "judge requests per step").startswith("64 (1 sample(s) each) to the verl-served")


def test_two_node_layout_puts_each_pool_on_its_own_node(capsys):
    code, out = run(capsys, "--nodes", "2", "+recipe=sophiavl", *TWO_NODES)
    assert code == 0, out
    assert "node 0: global_pool 8 GPUs; 8/8 GPUs" in out and "node 1: reward_pool 8 GPUs; 8/8 GPUs" in out


BAD = [
    # 64 rows do not split over 6 GPUs; 6 + 4 GPUs do not fit one node
    (
        ("--nodes", "1", "+recipe=sophiavl", "trainer.n_gpus_per_node=6"),
        ["real_train_batch_size (64) must be divisible by minimal possible batch size (6)", "no room for 4 more GPUs"],
    ),
    # a rollout replica of 3 GPUs on 4 trainer GPUs
    (
        ("+recipe=sophiavl", "actor_rollout_ref.rollout.tensor_model_parallel_size=3"),
        ["TP x DP x PP = 3 does not divide the pool's 4 GPUs"],
    ),
    # a TRM replica larger than its pool
    (
        ("+recipe=sophiavl", "reward.reward_model.rollout.tensor_model_parallel_size=8"),
        ["a replica needs TP x DP x PP = 8 x 1 x 1 = 8 GPUs, the pool has 4"],
    ),
    # a pool's node share larger than a node
    (("+recipe=sophiavl", "reward.reward_model.n_gpus_per_node=16"), ["one node's share is 16 GPUs and 48 CPUs"]),
    # too few CPUs for verl's 3 per GPU: 4 + 4 GPUs need 24 CPUs on one node, 4 GPUs alone 12
    (("--node-cpus", "16", "--nodes", "1", "+recipe=sophiavl"), ["no room for 4 more GPUs on 1 node(s)"]),
    (("--node-cpus", "8", "+recipe=sophiavl"), ["one node's share is 4 GPUs and 12 CPUs"]),
    # 16 trainer GPUs, a mini-batch of 1 prompt = 8 rows: verl's update_actor asserts 8 % 16 == 0
    (
        ("+recipe=sophiavl", *EXTERNAL_JUDGE, "trainer.nnodes=2", "actor_rollout_ref.actor.ppo_mini_batch_size=1"),
        ["rollout.n=8 = 8 rows does not divide by the actor's data-parallel size 16"],
    ),
    # the traps and the wiring check, at resolution
    (("+recipe=sophiavl", "reward.reward_model.enable=false"), ["enable_resource_pool=true", "no thinking reward"]),
    (("+recipe=sophiavl", "algorithm.filter_groups.enable=true"), ["algorithm.filter_groups.enable=true"]),
    # SFT: 128 rows over 6 GPUs, rounded down silently by verl
    (
        ("--entry", "sft", "+recipe=sophiavl_trm", "trainer.n_gpus_per_node=6"),
        ["data.train_batch_size=128 does not divide by the data-parallel size 6 (6 GPUs", "trains on 126 rows"],
    ),
    (("+recipe=no_such_recipe",), ["composing the config"]),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_known_bad_configs_fail_with_one_line_per_problem(capsys, args, expected):
    code, out = run(capsys, *args)
    assert code == 1, out
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert re.search(rf"^{len(problems)} problem\(s\):$", out, re.M), out
    for text in expected:
        assert any(text in line for line in problems), (text, out)


def test_padding_every_step_is_reported_with_its_cost(capsys):
    """Dynamic batch sizes skip verl's divisibility check: 64 rows on 6 GPUs are padded to lcm(6, 64) = 192."""
    args = (
        "+recipe=sophiavl",
        *EXTERNAL_JUDGE,
        "trainer.n_gpus_per_node=6",
        "actor_rollout_ref.actor.use_dynamic_bsz=true",
    )
    code, out = run(capsys, *args)
    assert code == 1
    assert layout_value(out, "pad rows per step").startswith("128 (verl pads each update to a multiple of 192)")
    assert layout_value(out, "rows per GPU").startswith("32 ")  # 192 / 6
    assert layout_value(out, "optimizer steps per rollout batch").startswith("3 ")  # 192 rows / 64 per mini-batch
    assert (
        "problem: 64 rows per update (data.train_batch_size=8 x actor_rollout_ref.rollout.n=8) do not divide by 192"
        in out
    )
    assert "(67% of the compute)" in out


def test_cluster_arithmetic():
    nodes, problems = place_pools({"global_pool": [4], "reward_pool": [4]}, node_gpus=8, node_cpus=24, nodes=1)
    assert problems == [] and [n.groups for n in nodes] == [[("global_pool", 4), ("reward_pool", 4)]]
    nodes, problems = place_pools({"global_pool": [8, 8], "reward_pool": [8]}, node_gpus=8)
    assert problems == [] and len(nodes) == 3
    assert padded_rows(64, 64) == 0 and padded_rows(64, 48) == 32 and padded_rows(64, 192) == 128
    assert replica_problems("x", 8, 2, 1, 1, 8) == []
    assert replica_problems("x", 16, 16, 1, 1, 8) == []  # a replica over two whole nodes
    (line,) = replica_problems("x", 24, 8, 1, 1, 6)  # replicas of 8 GPUs over nodes of 6
    assert "does not span whole nodes" in line


def _doc_commands(doc: str) -> list[list[str]]:
    """The ``main_ppo`` / ``sft_trainer`` commands of a doc page (indented blocks, continuations joined)."""
    text = (REPO / "docs" / doc).read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.startswith("    ")]
    return [line.split() for line in lines if "+recipe=" in line]


@pytest.mark.parametrize(("doc", "layouts"), [("training.md", TRAINING_LAYOUTS), ("trm-training.md", SFT_LAYOUTS)])
def test_the_docs_give_these_layouts(doc, layouts):
    commands = _doc_commands(doc)
    for name, (overrides, _) in layouts.items():
        wanted = {o.split("=")[0] + "=" if "base_url" in o else o for o in overrides}
        assert any(wanted <= {t.split("=")[0] + "=" if "base_url" in t else t for t in cmd} for cmd in commands), (
            f"{doc} shows no command with the {name} layout {sorted(overrides)}"
        )


# Every key preflight reads or verl divides by at run time, with bad values: zero, negative, not an integer, missing
# (Hydra's ``~key`` deletes it) or null, and not dividing what it splits. The sophiavl recipe's sizes on one node: 4
# trainer GPUs, 8 prompts x 8 responses = 64 rows, mini-batch 8 prompts = 64 rows = 16 per GPU, micro-batch 2, log-prob
# micro-batches 4 of the 16 rows per GPU; each case's comment says why it is bad where that is not plain.
_SIZES = {
    "data.train_batch_size": "12",  # 96 rows, padded to lcm(4, 64) = 192
    "actor_rollout_ref.rollout.n": "3",  # 24 rows = 6 per GPU: log-prob micro-batches of 4 do not divide 6
    "actor_rollout_ref.actor.ppo_mini_batch_size": "3",  # 24-row mini-batches: 64 rows padded to lcm(4, 24) = 96
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "3",  # 16 rows per GPU per mini-batch
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "3",  # 16 rows per GPU
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": "3",  # 16 rows per GPU
    "actor_rollout_ref.actor.ppo_epochs": None,  # any integer >= 1 is fine
    "trainer.nnodes": "3",  # 12 GPUs: 64 rows and the 64-row mini-batch do not divide by 12
    "trainer.n_gpus_per_node": "6",  # 64 rows over 6 GPUs
    "actor_rollout_ref.actor.ulysses_sequence_parallel_size": "3",  # does not divide 4 GPUs (8: more than 4)
    "actor_rollout_ref.rollout.tensor_model_parallel_size": "3",  # replicas of 3 GPUs on 4
    "actor_rollout_ref.rollout.data_parallel_size": None,
    "actor_rollout_ref.rollout.pipeline_model_parallel_size": None,
    "reward.reward_model.nnodes": None,
    "reward.reward_model.n_gpus_per_node": None,  # any count fits TRM replicas of 1 GPU
    "reward.reward_model.rollout.tensor_model_parallel_size": "3",  # TRM replicas of 3 GPUs on 4
    "reward.thinking_rm.samples": None,
}
_BRACED = {
    "actor_rollout_ref.rollout.tensor_model_parallel_size": "actor_rollout_ref.rollout.{tensor,data,pipeline}",
    "reward.reward_model.rollout.tensor_model_parallel_size": "reward.reward_model.rollout.{tensor,data,pipeline}",
}
SWEEP = []
for _key, _indivisible in _SIZES.items():
    SWEEP += [((f"{_key}={bad}",), _key) for bad in ("0", "-2", "abc")]
    SWEEP.append(((f"~{_key}",), _key))
    if _indivisible is not None:
        SWEEP.append(((f"{_key}={_indivisible}",), _BRACED.get(_key, _key)))
SWEEP += [
    (
        ("actor_rollout_ref.actor.ulysses_sequence_parallel_size=8",),
        "actor_rollout_ref.actor.ulysses_sequence_parallel_size",
    ),
    # null is legal only with dynamic batch sizes: verl's engine workers split by these sizes
    (
        ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=null",),
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
    ),
    (
        ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=null",),
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
    ),
    (
        ("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=null",),
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu",
    ),
    # verl asserts the actor's and the old-log-prob pass's dynamic-batch flags agree
    (
        ("actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=true",),
        "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz",
    ),
]
SFT_SWEEP = []
for _key, _indivisible in {
    "data.train_batch_size": "100",  # 100 rows over 8 GPUs
    "trainer.nnodes": None,
    "trainer.n_gpus_per_node": "6",  # 128 rows over 6 GPUs
    "engine.ulysses_sequence_parallel_size": "3",  # does not divide 8 GPUs
}.items():
    SFT_SWEEP += [((f"{_key}={bad}",), _key) for bad in ("0", "-2", "abc")]
    SFT_SWEEP.append(((f"~{_key}",), _key))
    if _indivisible is not None:
        SFT_SWEEP.append(((f"{_key}={_indivisible}",), _key))
_FIXED_MICRO = ("data.use_dynamic_bsz=false", "data.micro_batch_size_per_gpu=4")  # 16 rows per GPU, 4 per micro-batch
SFT_SWEEP += [
    ((*_FIXED_MICRO[:1], f"data.micro_batch_size_per_gpu={bad}"), "data.micro_batch_size_per_gpu")
    for bad in ("0", "-2", "abc", "null", "3")
]


def _problems(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("problem: ")]


@pytest.mark.parametrize(
    ("args", "key"),
    [(("+recipe=sophiavl", *o), k) for o, k in SWEEP]
    + [(("--entry", "sft", "+recipe=sophiavl_trm", *o), k) for o, k in SFT_SWEEP],
    ids=[" ".join(o) for o, _ in SWEEP] + ["sft " + " ".join(o) for o, _ in SFT_SWEEP],
)
def test_every_bad_size_is_one_problem_line_naming_its_key(capsys, args, key):
    """No traceback: main returns 1 and a problem line names the key (a line of its own, not an exception's text)."""
    code, out = run(capsys, *args)
    assert code == 1, out
    problems = _problems(out)
    assert re.search(rf"^{len(problems)} problem\(s\):$", out, re.M), out
    assert any(key in line for line in problems), (key, out)
    assert not any("Traceback" in line or "the layout check:" in line for line in problems), out


def test_sizes_that_are_good_pass_the_sweep_baseline(capsys):
    """The sweep's baselines pass, so each case's failure is its bad value's (and the fixed micro-batch of the SFT
    cases divides its 16 rows per GPU)."""
    assert run(capsys, "+recipe=sophiavl")[0] == 0
    assert run(capsys, "--entry", "sft", "+recipe=sophiavl_trm", *_FIXED_MICRO)[0] == 0


def test_two_bad_values_give_two_problem_lines(capsys):
    """Problems found before a bad value are kept: both keys get a line of their own."""
    code, out = run(
        capsys,
        "+recipe=sophiavl",
        "actor_rollout_ref.actor.ulysses_sequence_parallel_size=8",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=0",
        "reward.reward_model.n_gpus_per_node=abc",
    )
    assert code == 1, out
    problems = _problems(out)
    for key in (
        "actor_rollout_ref.actor.ulysses_sequence_parallel_size=8",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=0",
        "reward.reward_model.n_gpus_per_node='abc'",
    ):
        assert sum(line.startswith(f"problem: {key}") for line in problems) == 1, (key, out)
