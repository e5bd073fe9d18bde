"""Every side effect of the engine, as small, idempotent, retry-safe Temporal activities.

Workflows refer to activities by the names in `activities.names` only; importing this package's other
modules from a workflow would drag SQLAlchemy into the workflow sandbox.
"""
