# The engine's image: one image, three roles (worker, api, migrate), chosen by the command.
# Multi-stage: the build stage installs the package and its dependencies into a virtualenv; the runtime
# stage copies only that virtualenv and runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/callbacks
WORKDIR /src
# The same project the tests install (`pip install -e '.[dev]'`), without the dev and local extras:
# pyproject.toml and every package it lists (tests/test_compose.py keeps this list complete).
COPY pyproject.toml README.md ./
COPY worker.py ./
COPY activities/ activities/
COPY api/ api/
COPY calcom/ calcom/
COPY channels/ channels/
COPY cli/ cli/
COPY codec/ codec/
COPY config/ config/
COPY console/ console/
COPY devstack/ devstack/
COPY migrations/ migrations/
COPY models/ models/
COPY rules/ rules/
COPY starter/ starter/
COPY store/ store/
COPY telemetry/ telemetry/
COPY wiring/ wiring/
COPY workflows/ workflows/
RUN /opt/callbacks/bin/pip install . \
    && /opt/callbacks/bin/python -c "import worker, cli.main, devstack.calcom_fake, devstack.sinks"

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 callbacks \
    && useradd --system --uid 10001 --gid callbacks --home-dir /app --shell /usr/sbin/nologin callbacks \
    && mkdir -p /app && chown callbacks:callbacks /app
COPY --from=build /opt/callbacks /opt/callbacks
ENV PATH=/opt/callbacks/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER callbacks:callbacks
# 8000: the HTTP API; 9464: the worker's /metrics and /healthz.
EXPOSE 8000 9464
ENTRYPOINT ["callbacks"]
CMD ["worker"]
