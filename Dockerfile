# syntax=docker/dockerfile:1
# The mlmon exporter image: `docker build -t mlmon/exporter:0.1.0 .`
# Slim Python, a virtualenv copied from a build stage (no compiler or pip cache in the final
# image), a fixed non-root uid, and nothing written at run time, so it runs with a read-only
# root filesystem (Kubernetes readOnlyRootFilesystem, compose `read_only: true`).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/mlmon
WORKDIR /src
# Dependencies first, so a code change does not reinstall numpy and scipy. The redis extra too:
# the shared label store and act's shared dedupe record (docs/quality.md, docs/remediation.md).
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['redis']))" \
        > /tmp/requirements.txt \
    && /opt/mlmon/bin/pip install -r /tmp/requirements.txt
COPY exporter ./exporter
COPY dashboards ./dashboards
COPY alert_rules ./alert_rules
# Compile bytecode now: at run time the filesystem is read-only.
RUN /opt/mlmon/bin/pip install --no-deps . \
    && /opt/mlmon/bin/python -m compileall -q /opt/mlmon

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="mlmon exporter" \
      org.opencontainers.image.description="Prometheus-native ML model monitoring sidecar" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/mlmon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed uid/gid so Kubernetes runAsNonRoot can verify it and runAsUser can name it.
RUN groupadd --system --gid 10001 mlmon \
    && useradd --system --uid 10001 --gid mlmon --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mlmon
COPY --from=build /opt/mlmon /opt/mlmon
# The one folder mlmon writes: state snapshots (`--state-dir`). Owned by the runtime uid, so a
# compose named volume or a Kubernetes emptyDir mounted here is writable with a read-only root.
RUN mkdir -p /var/lib/mlmon && chown 10001:10001 /var/lib/mlmon
# The config and reference profiles are mounted here (ConfigMap or compose volume).
WORKDIR /etc/mlmon
USER 10001:10001
EXPOSE 8710
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8710/healthz', timeout=2); sys.exit(0)"]
ENTRYPOINT ["mlmon"]
CMD ["serve", "--config", "/etc/mlmon/mlmon.yaml"]
