# syntax=docker/dockerfile:1

# The base of both stages: the official slim Python image. A build argument only so that a
# machine that cannot pull it can build on an equivalent image of its own.
ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: turn the source tree into one wheel. The wheel carries frontend/ as
# boundarylab/frontend (hatch force-include), so the runtime stage needs no source tree.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY backend/ backend/
COPY frontend/ frontend/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# Runtime stage: the installed wheel and its dependencies, nothing else.
# tests/packaging replays these very RUN/CMD/HEALTHCHECK lines in a fresh venv, so keep
# the install steps plain `pip`/`python` commands.
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    BOUNDARYLAB_HOST=0.0.0.0 \
    BOUNDARYLAB_PORT=8000
COPY --from=build /dist/ /dist/
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist
# A numeric UID/GID so orchestrators can check runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 boundarylab \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin boundarylab
USER 10001:10001
WORKDIR /app
EXPOSE 8000
# The slim image has no curl: Python's urllib does the probe. It follows BOUNDARYLAB_PORT
# so overriding the port in the environment keeps the health check right.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BOUNDARYLAB_PORT', '8000') + '/api/health', timeout=4)"]
# Exec form: boundarylab (uvicorn) is PID 1 and receives SIGTERM from `docker stop` itself.
# Host and port come from BOUNDARYLAB_HOST / BOUNDARYLAB_PORT above.
CMD ["boundarylab", "serve"]
