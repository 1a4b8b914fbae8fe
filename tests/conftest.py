"""Shared fixtures. Tests run with ``--import-mode=importlib``; never import ``tests.*`` (verl ships a ``tests``)."""

from __future__ import annotations

import pytest
import verl  # noqa: F401  (importing verl loads our verl.plugins entry point, as main_ppo does)
from hydra import compose, initialize_config_module
from omegaconf import DictConfig


@pytest.fixture
def compose_ppo():
    """Composes verl 0.9.1's real ``ppo_trainer`` config with the given overrides, as ``main_ppo`` would."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_module("verl.trainer.config", version_base=None):
            return compose("ppo_trainer", overrides=list(overrides))

    return _compose
