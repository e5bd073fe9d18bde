"""The embedded local stack for `make dev` and the tests: PostgreSQL and Temporal from pip wheels."""
