"""PostgreSQL access (SQLAlchemy 2.0 async + asyncpg): engines, sessions, queries and the read model."""
