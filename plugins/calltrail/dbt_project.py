"""The dbt project's own values, read from ``dbt_project/dbt_project.yml``.

The rules' tunables (the call window, the inactivity gap, the Task fields) and the schemas dbt
builds and publishes into are dbt vars. Python code that needs one (the demo generator, the bench,
the summary) reads it here instead of writing the value again.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


@cache
def _project(project_dir: Path) -> dict[str, Any]:
    with (project_dir / "dbt_project.yml").open() as fh:
        return yaml.safe_load(fh)


def project_vars(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The project's vars with their defaults, as ``dbt_project.yml`` declares them."""
    return dict(_project(project_dir).get("vars") or {})


def project_var(name: str, project_dir: Path = PROJECT_DIR) -> Any:
    """One var's default; a name the project does not declare is an error, not ``None``."""
    values = project_vars(project_dir)
    if name not in values:
        raise KeyError(f"dbt_project.yml declares no var {name!r}")
    return values[name]
