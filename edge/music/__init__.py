"""Music: the on-device SQLite catalogue and the arousal/valence recommender."""

from edge.music.catalog import (
    FORMATS,
    STARTER_CATALOGUE,
    Catalog,
    CatalogError,
    CatalogSnapshot,
    ColumnMapping,
    Track,
    default_db_path,
    search_text,
    search_uri,
)
from edge.music.recommend import (
    POLICY_TARGETS,
    Policy,
    Recommendation,
    Recommender,
    RecommenderParams,
    plan_path,
    recommend,
)

__all__ = [
    "FORMATS",
    "POLICY_TARGETS",
    "STARTER_CATALOGUE",
    "Catalog",
    "CatalogError",
    "CatalogSnapshot",
    "ColumnMapping",
    "Policy",
    "Recommendation",
    "Recommender",
    "RecommenderParams",
    "Track",
    "default_db_path",
    "plan_path",
    "recommend",
    "search_text",
    "search_uri",
]
