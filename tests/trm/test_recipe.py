"""The recipe `+recipe=sophiavl_trm` composed into verl 0.9.1's real SFT config (``sft_trainer_engine``), as
``torchrun -m verl.trainer.sft_trainer`` and ``python -m verl.trainer.sft_trainer_ray`` compose it.

PPO and SFT share the ``recipe`` config group (it reaches every verl Hydra app through our plugin), so these tests
check that the recipe's keys land on the SFT app, and that CLI overrides win."""

from __future__ import annotations

import inspect

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf


def compose_sft(*overrides: str):
    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("sft_trainer_engine", overrides=list(overrides))


def test_recipe_keys_land_on_the_sft_app():
    cfg = compose_sft("+recipe=sophiavl_trm")
    # `+recipe=x` without a `recipe` group on the search path would only add a string key
    assert "recipe" not in cfg
    assert cfg.model.path == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert cfg.trainer.total_epochs == 2
    assert cfg.optim.lr == pytest.approx(1e-5)
    assert cfg.optim.lr_scheduler_type == "cosine"
    assert cfg.optim.lr_warmup_steps_ratio == pytest.approx(0.03)
    assert cfg.optim.weight_decay == 0.0
    assert cfg.data.custom_cls.path == "pkg://sophiavl.trm.sft_dataset"
    assert cfg.data.custom_cls.name == "TRMSFTDataset"
    assert cfg.data.image_key == "images"
    assert cfg.data.text_only_rows == "keep"
    assert cfg.data.max_length == 8192
    assert cfg.data.truncation == "error"
    assert cfg.data.pad_mode == "no_padding"
    assert cfg.data.train_batch_size == 128
    assert cfg.data.max_token_len_per_gpu >= cfg.data.max_length
    assert list(cfg.checkpoint.save_contents) == ["model", "optimizer", "extra", "hf_model"]
    assert list(cfg.checkpoint.load_contents) == ["model", "optimizer", "extra", "hf_model"]  # interpolated
    assert list(cfg.trainer.logger) == ["console"]
    assert cfg.trainer.resume_mode == "auto"
    assert cfg.trainer.save_freq == "after_each_epoch"
    assert cfg.trainer.test_freq == "after_each_epoch"


def test_verl_sft_defaults_are_replaced_where_they_would_hurt():
    plain = compose_sft()
    cfg = compose_sft("+recipe=sophiavl_trm")
    assert plain.optim.lr == pytest.approx(1e-3)  # verl's default, unusable for full fine-tuning
    assert cfg.optim.lr < plain.optim.lr
    assert "wandb" in plain.trainer.logger and "wandb" not in cfg.trainer.logger
    assert plain.data.custom_cls.path is None
    # keys the recipe does not mention keep verl's values
    assert cfg.engine.strategy == plain.engine.strategy
    assert cfg.optim.betas == plain.optim.betas
    assert cfg.trainer.seed == plain.trainer.seed


def test_cli_overrides_win_over_the_recipe():
    cfg = compose_sft(
        "+recipe=sophiavl_trm",
        "optim.lr=2e-5",
        "model.path=/models/other",
        "trainer.total_epochs=3",
        "data.text_only_rows=drop",
        "checkpoint.save_contents=[model,optimizer,extra]",
        "trainer.logger=[console,wandb]",
    )
    assert cfg.optim.lr == pytest.approx(2e-5)
    assert cfg.model.path == "/models/other"
    assert cfg.trainer.total_epochs == 3
    assert cfg.data.text_only_rows == "drop"
    assert "hf_model" not in cfg.checkpoint.save_contents
    assert list(cfg.trainer.logger) == ["console", "wandb"]


def test_data_files_default_to_the_converters_shards():
    cfg = compose_sft("+recipe=sophiavl_trm")
    assert cfg.data.train_files == "data/trm/train-*.parquet"  # `make prepare-trm-data` writes data/trm
    assert cfg.data.val_files == "data/trm/val-*.parquet"


def test_the_recipe_composes_into_the_ppo_app_too_but_does_not_configure_it(compose_ppo):
    # the shared group: +recipe=sophiavl_trm on main_ppo composes (Hydra cannot tell apps apart), so the RL recipe
    # must never be confused with this one; the PPO recipe's keys are absent here
    cfg = compose_ppo("+recipe=sophiavl_trm")
    assert cfg.algorithm.adv_estimator != "trust_grpo"
    assert "trust_grpo" not in cfg.algorithm


def test_both_sft_entry_points_use_the_config_the_tests_compose():
    import verl.trainer.sft_trainer as spmd
    import verl.trainer.sft_trainer_ray as ray_entry

    for module in (spmd, ray_entry):
        source = inspect.getsource(module.main)
        assert 'config_name="sft_trainer_engine"' in source, module.__name__


def test_the_dataset_class_loads_the_way_verl_loads_it():
    from verl.utils.import_utils import load_extern_object

    from sophiavl.trm.sft_dataset import TRMSFTDataset

    cfg = compose_sft("+recipe=sophiavl_trm")
    cls = load_extern_object(cfg.data.custom_cls.path, cfg.data.custom_cls.name)
    assert cls is TRMSFTDataset
    assert OmegaConf.select(cfg, "data.video_key") is None  # no video in this data
