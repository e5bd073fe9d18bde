"""`make chaos`: every failure ends in a defined state (issue 19).

Scenarios that break real processes — the production worker, the Temporal dev server, PostgreSQL, the
API — and the fakes of the outside world (Cal.com, SMTP, a webhook receiver), then check in PostgreSQL,
Temporal and the fakes that nothing was lost, nothing done twice and no workflow is stuck without a
visible flag. `python -m chaos --list` names them, `--only <name>` runs one. Not part of `make test`.
"""
