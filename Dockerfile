# syntax=docker/dockerfile:1
# Build with the Docker image format, which keeps HEALTHCHECK (the OCI format drops it):
#   podman build --format docker -t auth-sidecar .      docker build -t auth-sidecar .
# The base image: any Debian-like image with python3 >= 3.11, its venv module, useradd and
# groupadd. CI and air-gapped builds point it at a local one: --build-arg BASE_IMAGE=...
ARG BASE_IMAGE=docker.io/library/python:3.11-slim

# Build stage: a virtualenv with the locked dependencies, then the project, then no pip.
FROM ${BASE_IMAGE} AS build
# The package index (or a mirror of it) the build installs from: --build-arg PIP_INDEX_URL=...
ARG PIP_INDEX_URL=https://pypi.org/simple
WORKDIR /src
RUN python3 -m venv /opt/venv
# Dependencies first: this layer stays cached until constraints.txt changes (.ci/lock).
COPY constraints.txt ./
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps -r constraints.txt
COPY . .
# --no-deps + pip check: a dependency missing from (or too old in) constraints.txt fails the build
# instead of being installed unpinned.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -m pip uninstall -y -q pip setuptools wheel

# Final stage: the virtualenv, a non-root user and group 10001, no compilers, no pip.
FROM ${BASE_IMAGE}
# The base's own pip/setuptools go too (python:*-slim ships them in /usr/local).
RUN rm -rf /usr/local/bin/pip* /usr/local/lib/python3*/site-packages/pip \
      /usr/local/lib/python3*/site-packages/pip-* /usr/local/lib/python3*/site-packages/setuptools* \
      /usr/local/lib/python3*/site-packages/_distutils_hack /usr/local/lib/python3*/site-packages/distutils-precedence.pth \
      /usr/local/lib/python3*/site-packages/wheel /usr/local/lib/python3*/site-packages/wheel-* \
      /usr/share/python-wheels \
 && groupadd --system --gid 10001 auth-sidecar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin auth-sidecar
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 9191 8080
# Probes /readyz at the configured http_listen (AUTH_SIDECAR_HTTP_LISTEN, AUTH_SIDECAR_CONFIG or
# serve --config), so a moved port stays healthy. Kubernetes ignores this: the chart has probes.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["auth-sidecar", "healthcheck"]
LABEL org.opencontainers.image.title="auth-sidecar" org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["auth-sidecar"]
CMD ["serve"]
