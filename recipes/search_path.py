"""Puts the recipe's Hydra config group on the search path of every Hydra app (verl's ``main_ppo`` included).

``python -m verl.trainer.main_ppo +recipe=sophiavl`` needs a config group ``recipe`` on Hydra's search path.
A ``hydra_plugins`` namespace package would do this, but setuptools' default editable install hides it, so
the plugin class is registered by hand instead; ``sophiavl.recipes.plugin`` calls :func:`register` whenever
verl is imported (entry point group ``verl.plugins``).
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

#: Where the ``recipe`` config group lives (``recipes/config/recipe/*.yaml`` in the repository).
CONFIG_MODULE = "pkg://sophiavl.recipes.config"


class SophiaVLSearchPathPlugin(SearchPathPlugin):
    """Appends :data:`CONFIG_MODULE` to the search path, after the app's own config directory."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="sophiavl", path=CONFIG_MODULE)


def register() -> None:
    """Registers :class:`SophiaVLSearchPathPlugin` with Hydra. Idempotent: a second call changes nothing."""
    Plugins.instance().register(SophiaVLSearchPathPlugin)
