"""Data shapes shared by every layer: SQLAlchemy tables, pydantic messages and settings."""
