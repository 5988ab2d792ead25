"""Shared test set-up: the package under plugins/ is importable (pytest pythonpath)."""
