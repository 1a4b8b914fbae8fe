"""The embedded sample dataset (``data/``, released layout) and the script that generates it."""
