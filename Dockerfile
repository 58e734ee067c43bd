# radtranslate gRPC server, GPU build: ONNX Runtime (CUDA 12 + cuDNN 9), no torch, non-root.
#
#   docker build -t radtranslate:0.1.0 .
#   docker run --gpus all -p 50051:50051 -p 9464:9464 \
#     -v /srv/radtranslate/models:/models:ro \
#     -v /srv/radtranslate/secrets:/run/secrets:ro \
#     -e RADTRANSLATE_TOKEN_FILE=/run/secrets/tokens radtranslate:0.1.0
#
# Ports: 50051 gRPC (radtranslate.v1.TranslationService, grpc.health.v1.Health, reflection),
#        9464 Prometheus /metrics (HTTP).
# Config: RADTRANSLATE_* environment variables or a TOML file (RADTRANSLATE_CONFIG=/etc/radtranslate/server.toml);
#         see docs/service.md. Without TLS or tokens the server binds 127.0.0.1 only, i.e. it is
#         unreachable from outside the container: configure RADTRANSLATE_TOKEN_FILE and/or TLS.
# Models: the shipped repository (models/repository) is baked in at /models; mount another
#         Triton-layout repository at /models (read-only) to replace it, or bake one in a derived image:
#         FROM radtranslate:0.1.0
#         COPY --chown=10001:10001 repository/ /models/

ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README* ./
COPY service/ service/
COPY protos/ protos/
# The CPU onnxruntime wheel (a dependency for CPU hosts) is swapped for onnxruntime-gpu;
# both provide the `onnxruntime` module, so only one may be installed.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y onnxruntime \
 && /opt/venv/bin/pip install "onnxruntime-gpu>=1.19,<2" \
 && /opt/venv/bin/python -c "import onnxruntime, service.rpc.server; print(onnxruntime.get_available_providers())"

FROM ${CUDA_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin radtranslate \
 && mkdir -p /models /etc/radtranslate && chown 10001:10001 /models
COPY --from=build /opt/venv /opt/venv
# The shipped model repository is baked in; mounting another repository at /models replaces it.
COPY --chown=10001:10001 models/repository/ /models/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RADTRANSLATE_HOST=0.0.0.0 \
    RADTRANSLATE_PORT=50051 \
    RADTRANSLATE_MODELS_DIR=/models \
    RADTRANSLATE_METRICS_HOST=0.0.0.0 \
    RADTRANSLATE_METRICS_PORT=9464 \
    RADTRANSLATE_LOG_JSON=true \
    RADTRANSLATE_GRACE_S=30
USER 10001:10001
WORKDIR /home/radtranslate
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["python", "-m", "service.rpc.healthcheck"]
ENTRYPOINT ["tini", "--"]
CMD ["radtranslate", "serve"]
