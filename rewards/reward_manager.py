"""verl 0.9.1 reward-loop manager of SophiaVL-R1: outcome reward ``Ro`` plus the thinking reward ``Rt`` per sample.

Selected in the recipe by ``reward.reward_manager.source=importlib``,
``reward.reward_manager.module.path=pkg://sophiavl.rewards.reward_manager`` and
``reward.reward_manager.name=ThinkingRewardManager``. verl calls :meth:`ThinkingRewardManager.run_single` once per
response, in any order; the group-level trust shaping happens later, in the trust sampler.

Per sample it returns ``reward_score = Ro`` and ``reward_extra_info``, the same float keys for every sample: the
contract is :class:`sophiavl.rewards.reward_info.RewardInfo` (``outcome``, ``thinking``, ``thinking_status`` ...,
plus ``thinking_sample_{j}`` when ``reward.thinking_rm.samples`` = K > 1).

With ``reward.thinking_rm.enable=false`` no judge is built and no call is made: every response has
``thinking_status`` 1 (skipped) and a NaN ``thinking`` (the GRPO baseline, recipe ``sophiavl_grpo``).

A failed judgement is never turned into 0: ``thinking`` stays NaN and the trust sampler decides (it stops the run
past ``reward.thinking_rm.max_failure_rate``).

With ``reward.collect.dir`` set, every scored training response is also written there as a rollout record (its row's
identity, question, response, ``Ro``, verl's step and group uid), for the thinking-reward data build
(:mod:`sophiavl.rewards.collect`, docs/trm-data-build.md).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from typing import Any

from omegaconf import DictConfig, OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from sophiavl.rewards.collect.collector import RolloutCollector
from sophiavl.rewards.collect.config import CollectConfig
from sophiavl.rewards.outcome import compute_score as outcome_compute_score
from sophiavl.rewards.outcome.score import format_ok as passes_format
from sophiavl.rewards.reward_info import RewardInfo, sample_keys
from sophiavl.rewards.trm.client import ThinkingJudge
from sophiavl.rewards.trm.codes import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED
from sophiavl.rewards.trm.config import ThinkingRMConfig
from sophiavl.rewards.trm.inputs import first_image, question_text
from sophiavl.rewards.trust.config import TrustConfig

logger = logging.getLogger(__name__)


def judge_endpoint(rm_cfg: ThinkingRMConfig, reward_router_address: str | None) -> str:
    """The judge's base URL: ``reward.thinking_rm.base_url`` when set, else verl's reward router.

    Raises ``ValueError`` when neither is available (no RM configured at all).
    """
    if rm_cfg.base_url:
        return rm_cfg.base_url
    if reward_router_address:
        return f"http://{reward_router_address}/v1"
    raise ValueError(
        "no thinking reward model: set reward.thinking_rm.base_url=http://host:port/v1 (an external "
        "OpenAI-compatible server) or reward.reward_model.enable=true with reward.reward_model.enable_resource_pool="
        "true (verl serves it)"
    )


def _select(config: Any, dotted: str) -> Any:
    """``config.a.b.c`` of verl's config (a DictConfig, or nested dicts); ``None`` where a level is missing."""
    node = config if isinstance(config, DictConfig) else OmegaConf.create(config)
    return OmegaConf.select(node, dotted, default=None)


class ThinkingRewardManager(RewardManagerBase):
    """Scores one response: ``Ro`` by the outcome function, ``Rt`` by the thinking reward model (training rows).

    Args:
        config: verl's whole trainer config (reads ``reward.thinking_rm``, ``reward.collect``, ``reward.num_workers``,
            ``reward.reward_model.model_path`` and ``algorithm.trust_grpo``).
        tokenizer: the policy's tokenizer (decodes the response).
        compute_score: the outcome function verl loaded from ``reward.custom_reward_function``; verl's generic
            default is replaced by :func:`sophiavl.rewards.outcome.compute_score`.
        reward_router_address: ``host:port`` of verl's router in front of the verl-managed reward model, or None.
        reward_model_tokenizer: the reward model's tokenizer (unused: the server applies its chat template).
    """

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        # the wiring (sampler, estimator, trainer mode) is checked when verl resolves the recipe's config
        # (sophiavl.recipes.trust_wiring); here only the two nodes this manager reads
        self.trust = TrustConfig.from_config(_select(config, "algorithm.trust_grpo"))
        self.rm_cfg = ThinkingRMConfig.from_config(_select(config, "reward.thinking_rm"))
        self.compute_score = self._outcome_function(compute_score)
        self.is_async_score = inspect.iscoroutinefunction(self.compute_score)
        self.reward_router_address = reward_router_address
        self.reward_model_tokenizer = reward_model_tokenizer
        self.sample_keys = sample_keys(self.rm_cfg.samples)
        collect = CollectConfig.from_config(_select(config, "reward.collect"))
        self.collector = RolloutCollector(collect) if collect.enabled else None
        self.judge: ThinkingJudge | None = None
        if not self.rm_cfg.enable:
            return  # no thinking reward: no judge, no endpoint needed
        model = self.rm_cfg.model
        if model is None and not self.rm_cfg.base_url:
            model = _select(config, "reward.reward_model.model_path")
        num_workers = max(1, int(_select(config, "reward.num_workers") or 1))
        self.judge = ThinkingJudge.from_config(
            self.rm_cfg,
            base_url=judge_endpoint(self.rm_cfg, reward_router_address),
            model=model,
            max_concurrency=max(1, math.ceil(self.rm_cfg.max_concurrency / num_workers)),
        )

    @staticmethod
    def _outcome_function(compute_score: Any) -> Any:
        if compute_score is None:
            return outcome_compute_score
        try:
            from verl.utils.reward_score import default_compute_score
        except ImportError:  # pragma: no cover
            return compute_score
        return outcome_compute_score if compute_score is default_compute_score else compute_score

    async def _outcome(self, **kwargs: Any) -> tuple[float, float, float]:
        if self.is_async_score:
            result = await self.compute_score(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, lambda: self.compute_score(**kwargs))
        failed = 0.0
        if isinstance(result, dict):
            score = float(result["score"])
            fmt = result.get("format_ok")
            failed = float(result.get("scorer_failed", 0.0))
        else:
            score, fmt = float(result), None
        if fmt is None:
            fmt = 1.0 if passes_format(kwargs["solution_str"]) else 0.0
        return score, float(fmt), failed

    def wants_judgement(self, outcome: float, extra_info: dict) -> bool:
        """False when the thinking reward is off (``reward.thinking_rm.enable=false``), for validation rows
        (``extra_info["split"]`` present and not ``"train"``) and, under the ``official`` semantics, for
        ``outcome < skip_rm_below``. Rows without a ``split`` count as training rows."""
        if self.judge is None:
            return False
        split = extra_info.get("split")
        if split is not None and str(split) != "train":
            return False
        return not (self.trust.official and outcome < self.trust.skip_rm_below)

    async def run_single(self, data: DataProto) -> dict:
        """Scores the last sequence of ``data`` (one sample); see the module docstring for what it returns."""
        begin = time.time()
        data = data[-1:]
        item = data[0]
        response_ids = item.batch["responses"]
        response_length = response_ids.shape[-1]
        valid_length = int(item.batch["attention_mask"][-response_length:].sum())
        valid_ids = response_ids[:valid_length]
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(None, lambda: self.tokenizer.decode(valid_ids, skip_special_tokens=True))

        non_tensor = item.non_tensor_batch
        ground_truth = non_tensor["reward_model"]["ground_truth"]
        extra_info = dict(non_tensor.get("extra_info") or {})
        outcome, fmt, scorer_failed = await self._outcome(
            data_source=non_tensor.get("data_source"),
            solution_str=response,
            ground_truth=ground_truth,
            extra_info=extra_info,
        )

        if self.collector is not None:
            self.collector.add(
                extra_info,
                non_tensor.get("data_source"),
                str(extra_info.get("question") or question_text(non_tensor.get("raw_prompt"))),
                response,
                outcome,
                step=non_tensor.get("global_steps"),
                group=non_tensor.get("uid"),
            )

        thinking, status, error, latency = float("nan"), STATUS_SKIPPED, 0, 0.0
        per_sample = [float("nan")] * len(self.sample_keys)
        if self.wants_judgement(outcome, extra_info):
            assert self.judge is not None
            raw_prompt = non_tensor.get("raw_prompt")
            try:
                image = first_image(raw_prompt)
            except (OSError, ValueError) as exc:
                judgement = self.judge.reject_input(f"unusable image in sample {extra_info.get('index')}: {exc}")
            else:
                judgement = await self.judge.judge(question_text(raw_prompt), response, image)
            latency, error = judgement.latency_s, judgement.error
            if judgement.score is None:
                status = STATUS_FAILED
            else:
                thinking, status = judgement.score, STATUS_OK
            if self.sample_keys:
                per_sample = [float("nan") if v is None else float(v) for v in judgement.scores]

        info: RewardInfo = {
            "outcome": outcome,
            "thinking": thinking,
            "thinking_status": float(status),
            "thinking_error": float(error),
            "format_ok": fmt,
            "scorer_failed": scorer_failed,
            "rm_latency_s": latency,
            "acc": 1.0 if outcome >= self.trust.correct_threshold else 0.0,
            "reward_begin_t": begin,
            "reward_end_t": math.nan,  # set last, below
        }
        info.update(zip(self.sample_keys, per_sample, strict=True))
        info["reward_end_t"] = time.time()
        return {"reward_score": outcome, "reward_extra_info": info}
