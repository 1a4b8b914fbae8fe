"""The ``verl.plugins`` entry point: declared, idempotent, loud on failure, effective in a fresh Ray worker."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points

import ray
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

from sophiavl.recipes import plugin, search_path


def _search_path_plugins() -> list[type]:
    return [cls for cls in Plugins.instance().discover(SearchPathPlugin) if cls is search_path.SophiaVLSearchPathPlugin]


def test_entry_point_is_declared():
    (ep,) = [ep for ep in entry_points(group="verl.plugins") if ep.name == "sophiavl"]
    assert ep.value == "sophiavl.recipes.plugin"


def test_registration_is_idempotent():
    importlib.reload(plugin)
    search_path.register()
    assert len(_search_path_plugins()) == 1


def test_failure_is_logged_at_error_before_reraising():
    # make one registering module unimportable, then import verl as any process does
    code = "import sys; sys.modules['sophiavl.recipes.search_path'] = None; import verl"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0  # verl itself swallows plugin errors ...
    assert "ERROR" in proc.stderr and "sophiavl: the verl plugin failed to register" in proc.stderr  # ... we do not
    assert "Traceback" in proc.stderr


def test_plugin_registers_in_a_fresh_ray_worker():
    # defined here so that Ray ships it by value: the worker cannot import this test module by name
    def registrations_in_this_process() -> dict:
        import sys

        import verl  # noqa: F401  (what every verl process does first)
        from hydra.core.plugins import Plugins
        from hydra.plugins.search_path_plugin import SearchPathPlugin
        from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

        from sophiavl.recipes import plugin

        return {
            "estimators": sorted(ADV_ESTIMATOR_REGISTRY),
            "search_path": [c.__name__ for c in Plugins.instance().discover(SearchPathPlugin)],
            "modules": {name: name in sys.modules for name in plugin.REGISTERING_MODULES},
        }

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        found = ray.get(ray.remote(registrations_in_this_process).remote(), timeout=120)
    finally:
        ray.shutdown()
    assert "SophiaVLSearchPathPlugin" in found["search_path"]
    assert found["modules"] and all(found["modules"].values()), found["modules"]
    assert "trust_grpo" in found["estimators"]
