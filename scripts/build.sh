#!/usr/bin/env bash
# The release pipeline: test -> train -> build -> export -> publish -> containerize -> smoke; stops at the first
# failure.
#
# Usage: scripts/build.sh [--notebook PATH] [--skip STAGE]... [--only STAGE]... [--local-base] [--image-tag TAG]
#                         [--publish s3://BUCKET/PREFIX]
#   stages: test train build export publish containerize smoke (default: all, in that order)
#   --notebook    the notebook to train (default notebooks/iris.ipynb); its model is <notebook name>_clf and
#                 the bento <notebook name>_clf_service, e.g. --notebook notebooks/churn.ipynb
#   --local-base  build the image on a local Debian base (scripts/make-base-image.sh): for networks without
#                 Docker Hub or behind a TLS-intercepting proxy. Default: the standard python:3.11-slim base.
#   --publish     upload the bento and its model there (scripts/publish.py; AWS_* variables give the endpoint and
#                 credentials); default $PUBLISH_URL. Without either the publish stage is skipped.
# The container engine: $BENTOML_CONTAINERIZE_BACKEND if set, else docker when its daemon answers, else podman,
# else buildah (buildah builds but cannot run the smoke test). MODEL_TAG picks the model when train is skipped.
set -Eeuo pipefail  # -E: the ERR trap below also fires inside the stage functions

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
ALL_STAGES=(test train build export publish containerize smoke)
PYTHON="$ROOT/.venv/bin/python"
BENTOML="$ROOT/.venv/bin/bentoml"
BASE_IMAGE="localhost/model-service-base:bookworm"
SMOKE_PORT="${SMOKE_PORT:-3900}"

stages=() skip=() local_base=false image_tag="" notebook="notebooks/iris.ipynb" publish_url="${PUBLISH_URL:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --notebook) notebook="$2"; shift 2 ;;
        --only) stages+=("$2"); shift 2 ;;
        --skip) skip+=("$2"); shift 2 ;;
        --local-base) local_base=true; shift ;;
        --image-tag) image_tag="$2"; shift 2 ;;
        --publish) publish_url="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$publish_url" ]; then
    for s in "${stages[@]}"; do
        [ "$s" != publish ] || { echo "build.sh: --only publish needs --publish s3://BUCKET/PREFIX or PUBLISH_URL" >&2; exit 2; }
    done
    skip+=(publish)  # nowhere to publish to
fi
[ ${#stages[@]} -gt 0 ] || stages=("${ALL_STAGES[@]}")

wanted() {
    local stage="$1" s
    for s in "${skip[@]}"; do [ "$s" = "$stage" ] && return 1; done
    for s in "${stages[@]}"; do [ "$s" = "$stage" ] && return 0; done
    return 1
}

timings=()
current=""
on_error() { echo "build.sh: stage '$current' FAILED; later stages did not run." >&2; }
trap on_error ERR

run_stage() {
    local stage="$1"; shift
    wanted "$stage" || return 0
    current="$stage"
    echo "==> $stage"
    local started=$SECONDS
    "$@"
    timings+=("$stage $((SECONDS - started))s")
}

# --- the container engine -----------------------------------------------------------------------------
pick_engine() {
    if [ -n "${BENTOML_CONTAINERIZE_BACKEND:-}" ]; then echo "$BENTOML_CONTAINERIZE_BACKEND"; return; fi
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker; return; fi
    if command -v podman >/dev/null 2>&1; then echo podman; return; fi
    if command -v buildah >/dev/null 2>&1; then echo buildah; return; fi
    echo "build.sh: no container engine found. Install Docker (https://docs.docker.com/engine/install/) or," \
        "on Debian/Ubuntu, podman: sudo apt-get install podman runc" >&2
    return 1
}

use_podman_conf() {
    # runc + cgroupfs work on hosts without systemd or cgroup delegation (CI sandboxes) as well as on others.
    # A CONTAINERS_CONF of your own wins.
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/deploy/podman/containers.conf}"
}

# --- stages -------------------------------------------------------------------------------------------
stage_test() { make test; }

stage_train() {
    make setup
    model_tag="$("$PYTHON" -m train --notebook "$notebook" | tail -n 1)"
    echo "model: $model_tag"
}

stage_build() {
    local bentofile="bentofile.yaml"
    if $local_base; then
        mkdir -p build
        bentofile="build/bentofile.local-base.yaml"
        "$PYTHON" - "$BASE_IMAGE" "$bentofile" <<'PY'
import sys, yaml
config = yaml.safe_load(open("bentofile.yaml"))
config.setdefault("docker", {})["base_image"] = sys.argv[1]
yaml.safe_dump(config, open(sys.argv[2], "w"), sort_keys=False)
PY
    fi
    # The service, and so the bento, is named after the model: <model name>_service.
    bento_tag="$(MODEL_TAG="$model_tag" "$BENTOML" build -f "$bentofile" --output tag | tail -n 1)"
    bento_tag="${bento_tag#__tag__:}"
    echo "bento: $bento_tag"
}

stage_export() {
    mkdir -p dist
    local name="${model_tag/:/-}"
    "$BENTOML" models export "$model_tag" "$ROOT/dist/$name.bentomodel"
    echo "model file: dist/$name.bentomodel"
}

stage_publish() {
    "$PYTHON" scripts/publish.py publish "$publish_url" --bento "$bento_tag"
    published="${publish_url%/}/${bento_tag/:/-}.bento"
}

stage_containerize() {
    engine="$(pick_engine)"
    case "$engine" in podman|buildah) use_podman_conf ;; esac
    if $local_base; then CONTAINER_ENGINE="$engine" scripts/make-base-image.sh "$BASE_IMAGE"; fi
    image_tag="${image_tag:-$(image_name):${bento_tag#*:}}"
    local options=()
    # Builds fetch packages; rootful podman/buildah builds reach the network most reliably on the host's.
    case "$engine" in podman|buildah) options+=(--opt network=host) ;; esac
    # From the temporary folder: BentoML 1.4.39 refuses a bento's dockerfile_template when its temporary build
    # context is not under the working directory (bentoml/BentoML#5566).
    (cd "${TMPDIR:-/tmp}" && "$BENTOML" containerize "$bento_tag" --backend "$engine" -t "$image_tag" "${options[@]}")
    image_size="$("$engine" image inspect "$image_tag" --format '{{.Size}}')"
    echo "image: $image_tag ($((image_size / 1024 / 1024)) MiB)"
}

stage_smoke() {
    local runner="${engine:-$(pick_engine)}"
    [ "$runner" = buildah ] && runner=podman
    case "$runner" in podman) use_podman_conf ;; esac
    local name="model-service-smoke-$$" status=0
    "$runner" run -d --rm --name "$name" -p "127.0.0.1:$SMOKE_PORT:3000" "$image_tag" >/dev/null
    smoke_checks || status=$?
    [ $status -eq 0 ] || "$runner" logs "$name" 2>&1 | tail -n 30
    "$runner" rm -f "$name" >/dev/null 2>&1 || true
    return $status
}

smoke_checks() {
    local started=$SECONDS url="http://127.0.0.1:$SMOKE_PORT" example answer
    until curl -sf "$url/readyz" >/dev/null; do
        [ $((SECONDS - started)) -le 120 ] || { echo "smoke: not ready after 120 s" >&2; return 1; }
        sleep 0.5
    done
    ready_s=$((SECONDS - started))
    # The model's own first example row (from its card), and the class it must answer with: any of its classes.
    example="$(curl -sf "$url/model" | "$PYTHON" -c 'import json,sys; e=json.load(sys.stdin)["card"]["examples"][0]; e.pop("label"); print(json.dumps(e))')" || return 1
    answer="$(curl -sf -X POST "$url/prediction" -H 'Content-Type: application/json' -d "$example")" || return 1
    echo "smoke: $example -> $answer"
    echo "$answer" | "$PYTHON" -c 'import json,sys; a=json.load(sys.stdin); assert a["class"] in a["probabilities"], a' \
        || { echo "smoke: /prediction did not answer a class" >&2; return 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/ui/")" = 200 ] || return 1
    echo "smoke: ready after ${ready_s}s, /prediction and /ui/ answer"
}

# The image is named after the bento: churn_clf_service -> churn-clf-service.
image_name() { local name="${bento_tag%%:*}"; echo "${name//_/-}"; }

model_tag="" bento_tag="" engine="" image_size="" ready_s="" published=""
run_stage test stage_test
run_stage train stage_train
if [ -z "$model_tag" ] && { wanted build || wanted export || wanted publish || wanted containerize || wanted smoke; }; then
    default_model="$(basename "$notebook" .ipynb)_clf:latest"
    model_tag="$("$BENTOML" models get "${MODEL_TAG:-$default_model}" -o json | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["name"]+":"+d["version"])')"
fi
run_stage build stage_build
run_stage export stage_export
if [ -z "$bento_tag" ] && { wanted publish || wanted containerize || wanted smoke; }; then
    bento_name="${model_tag%%:*}_service"
    bento_tag="$bento_name:$("$BENTOML" get "$bento_name:latest" -o json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["version"])')"
fi
run_stage publish stage_publish
run_stage containerize stage_containerize
if [ -z "$image_tag" ] && wanted smoke; then image_tag="$(image_name):${bento_tag#*:}"; fi
run_stage smoke stage_smoke

echo
echo "Summary"
echo "  model:  ${model_tag:-–}"
echo "  bento:  ${bento_tag:-–}"
echo "  image:  ${image_tag:-–} ${image_size:+($((image_size / 1024 / 1024)) MiB)}"
echo "  s3:     ${published:-–}"
echo "  ready:  ${ready_s:+${ready_s}s after docker/podman run}"
for timing in "${timings[@]}"; do echo "  stage:  $timing"; done
