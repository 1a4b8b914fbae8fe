"""Shared fixtures. Tests run with ``--import-mode=importlib``; never import ``tests.*`` (verl ships a ``tests``);
shared helpers are ordinary modules on pytest's path (``sophiavl_testing``, tests/support; tests/README.md)."""

from __future__ import annotations

import pytest
import verl  # noqa: F401  (importing verl loads our verl.plugins entry point, as main_ppo does)
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from sophiavl_testing.fake_judge_server import FakeJudgeServer


@pytest.fixture
def compose_ppo():
    """Composes verl 0.9.1's real ``ppo_trainer`` config with the given overrides, as ``main_ppo`` would."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_module("verl.trainer.config", version_base=None):
            return compose("ppo_trainer", overrides=list(overrides))

    return _compose


def pytest_collection_modifyitems(config, items):
    """Marks every test under ``tests/e2e`` ``e2e`` (it needs ``.venv-e2e``): `make test` runs them in a second phase,
    after the e2e venv is built (Makefile). Modules elsewhere that need that venv mark themselves."""
    for item in items:
        if "e2e" in item.path.relative_to(config.rootpath).parts[:2]:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def _fake_judge_session():
    server = FakeJudgeServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_judge(_fake_judge_session):
    """A real loopback OpenAI chat-completions server (``sophiavl_testing.fake_judge_server``), reset for each test.

    ``fake_judge.base_url`` is ``http://127.0.0.1:<port>/v1``; queue faults with ``fake_judge.push(...)``; the
    requests it received are in ``fake_judge.requests`` (payloads) and ``fake_judge.headers``.
    """
    server = _fake_judge_session
    server.reset()
    server.default = ("reply", "<answer>0.7</answer>")
    server.latency_s = 0.0
    yield server
    server.reset()


@pytest.fixture
def refused_url():
    """A ``http://127.0.0.1:<port>/v1`` URL on which nothing listens (connections are refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
