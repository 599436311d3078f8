#!/usr/bin/env bash
# The image's entrypoint (deploy/image/Dockerfile.template). SageMaker starts the image as `<image> serve` and
# sends GET /ping and POST /invocations to port 8080, so `serve` listens there; with no argument the image serves on
# 3000 as BentoML's own entrypoint does. Either way BentoML's entrypoint takes over: a `serve` first argument runs
# `bentoml serve <the bento>`, and an explicit BENTOML_PORT or PORT still wins.
set -euo pipefail
if [ "${1:-}" = serve ] && [ -z "${BENTOML_PORT:-}" ] && [ -z "${PORT:-}" ]; then
    # SAGEMAKER_BIND_TO_PORT: the port SageMaker assigns a container of a multi-container endpoint or pipeline.
    export BENTOML_PORT="${SAGEMAKER_BIND_TO_PORT:-8080}"
fi
exec "$BENTO_PATH/env/docker/entrypoint.sh" "$@"
