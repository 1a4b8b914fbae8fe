"""verl plugin entry point (``[project.entry-points."verl.plugins"] sophiavl``).

verl 0.9.1 imports every ``verl.plugins`` entry point on ``import verl`` (``verl/__init__.py``), in the driver,
the TaskRunner and every Ray worker, and swallows import errors at DEBUG level. Importing this module therefore
registers everything the recipe needs, is idempotent, and logs a failure at ERROR with its traceback before
re-raising, so that a broken install is never silent.
"""

import importlib
import logging

logger = logging.getLogger(__name__)

#: Modules whose import registers something with verl or Hydra (decorator registration), in import order.
REGISTERING_MODULES: tuple[str, ...] = (
    "sophiavl.recipes.trust_grpo_estimator",  # register_adv_est("trust_grpo")
    "sophiavl.recipes.trust_wiring",  # OmegaConf resolver sophiavl.check_trust_wiring
)


def _register_all() -> None:
    from sophiavl.recipes import search_path

    search_path.register()
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


try:
    _register_all()
except Exception:
    logger.error("sophiavl: the verl plugin failed to register; the recipe will not work", exc_info=True)
    raise
