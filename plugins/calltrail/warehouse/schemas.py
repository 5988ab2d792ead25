"""What the publish step publishes: the consumer marts, the dbt project's var
``calltrail__published_models``, read here, not written again. The schemas themselves are
settings (``Settings.build_schema``, ``publish_schema``, ``publications``, ...)."""

from __future__ import annotations

from calltrail.dbt_project import project_var

# The consumer marts the publish step copies into the publish schema (``calltrail__published_models``).
PUBLISHED_MODELS: tuple[str, ...] = tuple(project_var("calltrail__published_models"))
