"""Configuration: which database, Temporal and Cal.com to use, and every tunable of the engine."""

from config.settings import (
    LOCAL_DATABASE,
    LOCAL_TEMPORAL_ADDRESS,
    Settings,
    database_url_of,
    get_settings,
)

__all__ = ["LOCAL_DATABASE", "LOCAL_TEMPORAL_ADDRESS", "Settings", "database_url_of", "get_settings"]
