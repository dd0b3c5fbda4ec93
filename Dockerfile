# syntax=docker/dockerfile:1
# pdp: the policy decision point as a container image.
#
#   docker build -t pdp:dev .
#   docker run --rm -p 50051:50051 -p 9090:9090 pdp:dev
#
# Needs BuildKit (the default builder since Docker Engine 23; `RUN --mount` below), the
# base image's registry (or a mirror: --build-arg PYTHON_IMAGE=...) and the Python package
# index for the first stage.
#
# Two stages: `build` downloads every dependency exactly as requirements.lock pins it
# (versions and sha256 hashes, with the `fast` extra: uvloop; refresh with scripts/lock.sh)
# and turns pdp itself into a wheel with the build backend requirements-build.lock pins;
# the final stage installs exactly those wheels with the network off (--no-index) onto a
# clean slim base, so no compiler, build backend or source tree reaches the image. Only
# wheels are accepted (--only-binary): every dependency ships a manylinux wheel for
# CPython 3.11, so nothing is compiled and a wheel's hash is the one locked.
#
# No HEALTHCHECK: Kubernetes ignores it (the kubelet runs the Deployment's native gRPC
# probes against grpc.health.v1 instead), and one baked in would start a Python
# interpreter in every container at every interval for nothing. With plain Docker, pass
# one at run time (README, "Deploying").

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Dependencies first: this layer is reused until a lock file changes.
COPY requirements.lock requirements-build.lock ./
RUN pip wheel --no-cache-dir --require-hashes --only-binary=:all: --wheel-dir /wheels \
        -r requirements.lock \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY pdp ./pdp
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# Redeclared: an ARG given before the first FROM is not visible inside a stage without it.
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="pdp" \
      org.opencontainers.image.description="Policy decision point: Microsoft Entra Conditional Access policies over gRPC" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
RUN groupadd --system --gid 10001 pdp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin pdp

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl

# The example policy set, so `docker run` serves something; Kubernetes mounts the
# ConfigMap of the real set over this folder.
COPY --chown=10001:10001 examples/ai-workspace /etc/pdp/policies

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PDP_POLICIES=/etc/pdp/policies \
    PDP_LISTEN=0.0.0.0:50051

USER 10001:10001
WORKDIR /tmp
EXPOSE 50051 9090
ENTRYPOINT ["pdp", "serve"]
