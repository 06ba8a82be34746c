#!/usr/bin/env bash
# Builds one Docker image per server and proves each with a real MCP client over `docker run -i --rm`.
#
#   scripts/docker-ci.sh            (root; ~3-4 min warm, add ~5 min the first time the Pulumi CLI is built)
#
# 1. Starts a private Docker engine from Debian's packages (docker.io; installed if missing) with its
#    data under $SOPHIA_DOCKER_DIR (default /tmp/sophia-docker); stops it and unmounts on exit.
# 2. No registry is reachable, so it makes TEST-ONLY stand-ins for the two base images: python:3.11-slim
#    (Debian bookworm's Python 3.11, made with mmdebstrap) and Pulumi's CLI image (the CLI built from Go
#    modules by scripts/build-pulumi.sh). Both carry the label org.sophia.test-only=true.
# 3. Builds sophia/<server>:0.1.0 and :latest from docker/Dockerfile, with canary secrets offered as a
#    build argument and a build secret.
# 4. Runs tests/docker/smoke.py: initialize, tools/list, one real tool call per server, non-root, SIGTERM
#    within a second, no canary in any layer or in `docker history`, sizes and cold start vs the host.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="0.1.0"
PULUMI_VERSION="${SOPHIA_PULUMI_VERSION:-3.276.0}"
SERVERS=(business-intelligence ai-intelligence data-intelligence infrastructure)
STANDIN_PYTHON="sophia-test-only/python:3.11-slim"
STANDIN_PULUMI="sophia-test-only/pulumi-base:$PULUMI_VERSION"
TEST_ONLY_LABEL="org.sophia.test-only=true"

dir="${SOPHIA_DOCKER_DIR:-/tmp/sophia-docker}"
sock="$dir/docker.sock"
export DOCKER_HOST="unix://$sock" DOCKER_BUILDKIT=1
docker_cli=/usr/bin/docker # Debian's 20.10 CLI: BuildKit built in (the machine's newer CLI lacks buildx)

log() { printf 'docker-ci: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
docker() { "$docker_cli" -H "$DOCKER_HOST" "$@"; }

[[ "$(id -u)" == 0 ]] || die "run as root: it starts a Docker engine"

install_packages() {
  local missing=()
  [[ -x /usr/sbin/dockerd && -x "$docker_cli" ]] || missing+=(docker.io)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  ((${#missing[@]} == 0)) && return
  log "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$dir/apt.log" 2>&1; then
    apt-get update >>"$dir/apt.log" 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>"$dir/apt.log" 2>&1 \
      || die "apt-get install ${missing[*]} (see $dir/apt.log)"
  fi
}

engine_pid=""
stop_engine() {
  [[ -n "$engine_pid" ]] || return 0
  log "stopping the Docker engine (pid $engine_pid)"
  kill "$engine_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$engine_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$engine_pid" 2>/dev/null; then
    kill -9 "$engine_pid" 2>/dev/null || true
  fi
  if mountpoint -q "$dir/exec/netns/default" 2>/dev/null; then
    umount "$dir/exec/netns/default" || true
  fi
  engine_pid=""
}

start_engine() {
  if docker version >/dev/null 2>&1; then
    log "reusing the Docker engine already answering on $sock (left running)"
    return
  fi
  rm -f "$sock" "$dir/dockerd.pid"
  log "starting the Docker engine (data in $dir)"
  /usr/sbin/dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
    --data-root "$dir/data" --exec-root "$dir/exec" -H "$DOCKER_HOST" --pidfile "$dir/dockerd.pid" \
    >"$dir/dockerd.log" 2>&1 &
  engine_pid=$!
  trap stop_engine EXIT
  for _ in $(seq 1 150); do
    docker version >/dev/null 2>&1 && return
    kill -0 "$engine_pid" 2>/dev/null || die "dockerd exited at start (see $dir/dockerd.log)"
    sleep 0.2
  done
  die "dockerd did not answer within 30 s (see $dir/dockerd.log)"
}

image_is_standin() {
  [[ "$(docker image inspect --format '{{index .Config.Labels "org.sophia.test-only"}}' "$1" 2>/dev/null)" == true ]]
}

make_python_standin() {
  if image_is_standin python:3.11-slim; then
    log "stand-in python:3.11-slim present"
    return
  fi
  if docker image inspect python:3.11-slim >/dev/null 2>&1; then
    log "python:3.11-slim is a real image here; building on it"
    return
  fi
  local sources=/etc/apt/sources.list.d/debian.sources
  [[ -f "$sources" ]] || sources=/etc/apt/sources.list
  log "making the TEST-ONLY stand-in python:3.11-slim (Debian bookworm's Python 3.11, ~1 min)"
  # Like the official image: python3, pip and venv under /usr/local, CA certificates, tzdata. The
  # host's apt sources are used for the download and removed from the image.
  mmdebstrap --quiet --variant=minbase --mode=root \
    --include=python3,python3-venv,ca-certificates,netbase,tzdata \
    --customize-hook='chroot "$1" python3 -m venv /usr/local' \
    --customize-hook='test "$(chroot "$1" /usr/local/bin/python3 -c "import sys; print(sys.version_info[:2])")" = "(3, 11)"' \
    --customize-hook='rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*' \
    bookworm "$dir/python-standin.tar" "$sources" >"$dir/mmdebstrap.log" 2>&1 \
    || die "mmdebstrap (see $dir/mmdebstrap.log)"
  docker import \
    --change "LABEL $TEST_ONLY_LABEL" \
    --change 'LABEL org.opencontainers.image.description="TEST-ONLY stand-in for python:3.11-slim (Debian bookworm python3 in a venv at /usr/local). Never publish."' \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$dir/python-standin.tar" "$STANDIN_PYTHON" >/dev/null
  docker tag "$STANDIN_PYTHON" python:3.11-slim
  rm -f "$dir/python-standin.tar"
}

make_pulumi_standin() {
  if image_is_standin "$STANDIN_PULUMI"; then
    log "stand-in $STANDIN_PULUMI present"
    return
  fi
  local cli_dir
  # Cached by version: a no-op once built (about 5 minutes from Go modules the first time).
  cli_dir="$(SOPHIA_PULUMI_VERSION="$PULUMI_VERSION" scripts/build-pulumi.sh)"
  log "making the TEST-ONLY stand-in $STANDIN_PULUMI from $cli_dir"
  # Pulumi's published image keeps the CLI and its plugins in /pulumi/bin; the stand-in does too.
  printf '%s\n' \
    'FROM scratch' \
    'COPY pulumi pulumi-resource-pulumi-python /pulumi/bin/' \
    "LABEL $TEST_ONLY_LABEL" \
    "LABEL org.opencontainers.image.description=\"TEST-ONLY stand-in for pulumi/pulumi-base:$PULUMI_VERSION (CLI built from Go modules). Never publish.\"" \
    | docker build --quiet -t "$STANDIN_PULUMI" -f - "$cli_dir" >/dev/null
}

build_images() {
  local revision created server started
  revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # A build secret and a build argument named like real keys, never used by the Dockerfile: the smoke
  # test then proves neither reached a layer or the history.
  printf '%s' "$BUILD_CANARY" >"$dir/build-canary"
  for server in "${SERVERS[@]}"; do
    started=$SECONDS
    log "building sophia/$server:$VERSION"
    docker build --network host --progress plain \
      -f docker/Dockerfile --target "$server" \
      --build-arg SERVER="$server" --build-arg VERSION="$VERSION" \
      --build-arg REVISION="$revision" --build-arg CREATED="$created" \
      --build-arg PULUMI_IMAGE="$STANDIN_PULUMI" \
      --build-arg PULUMI_ACCESS_TOKEN="$BUILD_CANARY" \
      --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt \
      --secret id=pulumi_access_token,src="$dir/build-canary" \
      -t "sophia/$server:$VERSION" -t "sophia/$server:latest" . >"$dir/build-$server.log" 2>&1 \
      || { tail -40 "$dir/build-$server.log" >&2; die "docker build of $server (see $dir/build-$server.log)"; }
    log "built sophia/$server:$VERSION in $((SECONDS - started)) s"
  done
  rm -f "$dir/build-canary"
}

mkdir -p "$dir"
total_started=$SECONDS
install_packages
start_engine
BUILD_CANARY="pul-$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
RUN_CANARY="pul-$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
make_python_standin
make_pulumi_standin
build_images

# The client and the vendor fakes come from the dev environment (--frozen: never re-lock here).
export PATH="$HOME/.local/bin:$PATH"
command -v uv >/dev/null 2>&1 || die "uv is needed for the MCP client (.ci/run installs it)"
log "driving each image with the MCP client (tests/docker/smoke.py)"
uv run --frozen --dev python -m tests.docker.smoke \
  --docker "$docker_cli" --docker-host "$DOCKER_HOST" --work "$dir/smoke" \
  --version "$VERSION" --pulumi-version "$PULUMI_VERSION" \
  --kubernetes-plugin "${SOPHIA_TOOLS_DIR:-$HOME/.cache/sophia/tools}/pulumi-v$PULUMI_VERSION/pulumi-resource-kubernetes" \
  --build-canary "$BUILD_CANARY" --run-canary "$RUN_CANARY" "${SERVERS[@]}"
log "all images passed in $((SECONDS - total_started)) s"
