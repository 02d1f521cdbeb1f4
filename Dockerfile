# syntax=docker/dockerfile:1
# Build stage: wheels for the project and its dependencies (compilers stay here).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY config ./config
COPY authz ./authz
COPY sidecar ./sidecar
COPY transport ./transport
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir .

# Final stage: the virtualenv only, a non-root user, no compilers.
FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin auth-sidecar
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001
EXPOSE 9191 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["auth-sidecar"]
CMD ["serve"]
