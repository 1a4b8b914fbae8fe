"""Helpers shared by the test suite: the loopback fake judge, the data-prep helpers, the end-to-end harness.

On pytest's path through ``[tool.pytest.ini_options] pythonpath`` (tests/support); never imported as ``tests.*``
(verl's wheel installs a top-level ``tests`` package).
"""
