#!/usr/bin/env bash
# `docker compose up`, for real: builds the image from the Dockerfile, starts it with the
# project's own docker-compose.yml, and checks it through the published port like a user
# would (page, plotly.js, health, a run streamed to the end), then that it runs as UID
# 10001 with the compose hardening in force, stops cleanly on `docker stop`, and that
# `docker-compose down` leaves nothing behind; then runs docker-compose.scale.yml (Redis mode:
# docker_check_scale.sh). Prints one PASS/FAIL line a check.
#
# No container registry is reachable on the CI machines, so python:3.11-slim cannot be
# pulled. The Dockerfile takes its base from the PYTHON_IMAGE build argument, and this script
# passes a stand-in built from Debian's own packages (debootstrap of this machine's release
# with python3, pip and venv), cached in the engine and as a tarball under $CACHE_DIR.
#
# Needs root (apt-get, dockerd, debootstrap). Installs docker.io, docker-compose and
# debootstrap if missing; starts dockerd if no engine answers, and stops it again at the end.
# With CI=true anything that keeps it from running is a failure; otherwise it says why it
# cannot run and exits 0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
started=$SECONDS

PROJECT=boundarylab-ci        # compose project of its own: never touches other containers
IMAGE=boundarylab-ci-check:latest  # not boundarylab:latest, which a user's build may own
BASE_REPO=boundarylab-ci-base
BASE_PACKAGES=(python3 python3-venv python3-pip ca-certificates)
APT_PACKAGES=(docker.io docker-compose debootstrap)
CACHE_DIR=${BOUNDARYLAB_CI_CACHE:-/var/cache/boundarylab-ci}
DOCKERD_START_S=60   # engine answering after dockerd starts
HEALTHY_S=120        # first probe at 30 s (compose interval); 3 failures make it unhealthy
STOP_LIMIT_S=5       # `docker stop` must end the server within this
# docker-compose 1.29 builds through the engine's classic builder. With BuildKit the
# Dockerfile's `# syntax=` line would make it pull a frontend image from a registry.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

failures=()
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures+=("$1"); }
note() { printf '\n--- %s [%ds]\n' "$*" "$((SECONDS - started))"; }

# Cannot run at all: a failure in CI, a plain explanation elsewhere.
cannot_run() {
    if [[ "${CI:-}" == "true" ]]; then
        printf 'FAIL: docker check cannot run: %s\n' "$*" >&2
        exit 1
    fi
    printf 'docker check not run: %s (with CI=true this is a failure)\n' "$*" >&2
    exit 0
}

# --- cleanup, whatever happens ---------------------------------------------------------
work=$(mktemp -d)
dockerd_pid=""
compose_up=false
scale_up=false  # docker_check_scale.sh's compose project is up
compose() {
    docker-compose --project-name "$PROJECT" \
        --file "$repo/docker-compose.yml" --file "$work/ci-override.yml" "$@"
}
cleanup() {
    local rc=$?
    set +e
    if $compose_up; then
        compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
    fi
    if $scale_up; then
        scale_compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
    fi
    if [[ -n "$dockerd_pid" ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
        echo "stopping the dockerd this script started (pid $dockerd_pid)"
        kill -TERM "$dockerd_pid"
        for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$dockerd_pid" 2>/dev/null; then
            echo "dockerd ignored SIGTERM for 30 s; killing it" >&2
            kill -KILL "$dockerd_pid"
        fi
        wait "$dockerd_pid" 2>/dev/null
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A command that fails outside the checks (set -e stops the script) still gets a FAIL line.
trap 'printf "FAIL: line %s failed: %s\n" "$LINENO" "$BASH_COMMAND"' ERR

# --- prerequisites ---------------------------------------------------------------------
note "prerequisites"
[[ $EUID -eq 0 ]] || cannot_run "needs root (apt-get, dockerd, debootstrap); run it as root"

if [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    py=$VIRTUAL_ENV/bin/python
else
    py=$repo/.venv/bin/python
fi
"$py" -c 'import httpx, websockets' 2>/dev/null \
    || cannot_run "no virtualenv with httpx and websockets: pip install -e '.[test]' first"

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"; } >"$work/apt.log" 2>&1 \
        || { tail -20 "$work/apt.log" >&2; cannot_run "apt-get install ${missing[*]} failed"; }
fi
mkdir -p "$CACHE_DIR"

# --- the engine ------------------------------------------------------------------------
note "docker engine"
if timeout 10 docker info >/dev/null 2>&1; then
    echo "using the engine that is already running"
else
    log=$CACHE_DIR/dockerd.log
    echo "starting dockerd (log: $log)"
    dockerd >"$log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq "$DOCKERD_START_S"); do
        timeout 5 docker info >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 1
    done
    if ! timeout 10 docker info >/dev/null 2>&1; then
        tail -20 "$log" >&2
        cannot_run "dockerd did not answer within ${DOCKERD_START_S} s"
    fi
fi
docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
docker-compose version --short | sed 's/^/docker-compose /'

# --- the stand-in for python:3.11-slim ---------------------------------------------------
note "stand-in base image"
release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n "$release" ]] || cannot_run "/etc/os-release names no Debian release"
# The mirror apt already uses for this release: the only package source this machine has.
mirror=$("$py" - "$release" <<'PY'
import glob, re, sys
release = sys.argv[1]
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == release:
            sys.exit(print(words[1]))
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, re.M))
        if ("deb" in fields.get("Types", "").split()
                and release in fields.get("Suites", "").split()
                and fields.get("Enabled", "yes").lower() != "no"):
            sys.exit(print(fields["URIs"].split()[0]))
PY
)
[[ -n "$mirror" ]] || cannot_run "no apt source for Debian $release in /etc/apt/sources.list*"

# pip in the image must reach the same package index as pip here, through the same TLS
# interception if there is one: copy the CA bundle, and the index and proxy settings that
# work from another host (file:// indexes and find-links are this machine's own paths).
ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[[ -r "$ca_bundle" ]] || cannot_run "no CA bundle at $ca_bundle"
pip_conf=$("$py" - <<'PY'
import os, subprocess, sys

def setting(key: str) -> list[str]:
    """pip's value for `key`: its PIP_* variable first, as pip reads it, then pip's config."""
    value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    if value is None:
        value = subprocess.run([sys.executable, "-m", "pip", "config", "get", f"global.{key}"],
                               capture_output=True, text=True).stdout.strip()
    return value.split()

lines = ["[global]", "cert = /etc/ssl/certs/ca-certificates.crt"]
for key in ("index-url", "extra-index-url"):
    urls = [url for url in setting(key) if url.startswith(("http://", "https://"))]
    if urls:
        lines.append(f"{key} = {' '.join(urls)}")
for key in ("trusted-host", "default-timeout"):
    if setting(key):
        lines.append(f"{key} = {' '.join(setting(key))}")
proxy = setting("proxy") or [os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or ""]
if proxy[0]:
    lines.append(f"proxy = {proxy[0]}")
print("\n".join(lines))
PY
)

# Everything that shapes the stand-in goes into its cache key, this function's text included.
customise_rootfs() {
    local root=$1
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # The official image's python and pip install into the system; Debian's refuse to.
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
    ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
    cp "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
    printf '%s\n' "$pip_conf" >"$root/etc/pip.conf"
}
import_changes=(--change 'ENV LANG=C.UTF-8'
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'CMD ["python3"]')
key=$({
    echo "$release $mirror ${BASE_PACKAGES[*]}"
    sha256sum <"$ca_bundle"
    echo "$pip_conf"
    declare -f customise_rootfs
    echo "${import_changes[*]}"
} | sha256sum | cut -c1-16)
base=$BASE_REPO:$key
tarball=$CACHE_DIR/base-$key.tar.gz

if docker image inspect "$base" >/dev/null 2>&1; then
    echo "reusing $base from the engine"
elif [[ -s "$tarball" ]]; then
    echo "importing $base from $tarball"
    docker import "${import_changes[@]}" "$tarball" "$base" >/dev/null
else
    echo "debootstrap $release (${BASE_PACKAGES[*]}) from the machine's apt mirror"
    rootfs=$CACHE_DIR/rootfs-$key
    rm -rf "$rootfs"
    include=$(IFS=,; echo "${BASE_PACKAGES[*]}")
    if ! debootstrap --variant=minbase --include="$include" "$release" "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -20 "$work/debootstrap.log" >&2
        rm -rf "$rootfs"
        cannot_run "debootstrap of $release failed"
    fi
    customise_rootfs "$rootfs"
    tar --numeric-owner -C "$rootfs" -c . | gzip -1 >"$tarball.partial"
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
    docker import "${import_changes[@]}" "$tarball" "$base" >/dev/null
fi
# One stand-in kept: tarballs of other keys are stale (another CA bundle, package list, ...).
find "$CACHE_DIR" -maxdepth 1 -name 'base-*.tar.gz' ! -name "base-$key.tar.gz" -delete
docker run --rm --network none "$base" sh -c 'python --version && pip --version' \
    || cannot_run "the stand-in $base has no working python/pip"

# Only what the stand-in needs on top of the project's compose file: the base image, and an
# image name of its own so a user's boundarylab:latest is never replaced by a CI build.
cat >"$work/ci-override.yml" <<EOF
services:
  app:
    image: $IMAGE
    build:
      args:
        PYTHON_IMAGE: "$base"
EOF

# --- build -----------------------------------------------------------------------------
note "build"
build_start=$SECONDS
if compose build >"$work/build.log" 2>&1; then
    pass "image built from the Dockerfile in $((SECONDS - build_start)) s"
    docker image ls "${IMAGE%:*}" --format 'image {{.Repository}}:{{.Tag}}: {{.Size}}'
else
    tail -40 "$work/build.log"
    fail "docker-compose build (last lines above)"
    exit 1
fi
# Each build with changed sources leaves the previous image and build stage untagged;
# remove those (descendants of this stand-in only), keeping this build's stage as cache.
base_id=$(docker image inspect --format '{{.Id}}' "$base")
stage_id=$(awk '/^Step [0-9]+\/[0-9]+ : FROM/ { n++ } n == 1 && /^ ---> [0-9a-f]+$/ { id = $2 }
    END { print id }' "$work/build.log")
for image in $(docker image ls --quiet --no-trunc --filter dangling=true); do
    [[ "$image" == *"$stage_id"* && -n "$stage_id" ]] && continue
    if docker history --quiet --no-trunc "$image" | grep -qx "$base_id"; then
        docker image rm "$image" >/dev/null 2>&1 || true
    fi
done

# --- up --------------------------------------------------------------------------------
note "docker-compose up -d"
# Whatever an interrupted earlier run left of this project goes first.
compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
if ! "$py" -c 'import socket; socket.create_server(("127.0.0.1", 8000)).close()' 2>/dev/null
then
    cannot_run "127.0.0.1:8000 is in use: the compose file publishes the app there"
fi
compose_up=true
compose up --detach --no-build
cid=$(compose ps --quiet app)
[[ -n "$cid" ]] || { fail "docker-compose up started no app container"; exit 1; }

up_start=$SECONDS
health=starting
while ((SECONDS - up_start < HEALTHY_S)); do
    health=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$cid")
    state=$(docker inspect --format '{{.State.Status}}' "$cid")
    [[ "$health" == healthy || "$health" == unhealthy || "$state" != running ]] && break
    sleep 1
done
if [[ "$health" == healthy ]]; then
    pass "container healthy $((SECONDS - up_start)) s after up (the health check's first probe)"
else
    fail "container not healthy after $((SECONDS - up_start)) s: health '$health', state '$state'"
    echo "health log:"
    docker inspect --format '{{json .State.Health}}' "$cid" | "$py" -m json.tool || true
    echo "container log (last 30 lines):"
    docker logs --tail 30 "$cid" 2>&1 || true
    exit 1
fi

# --- through the published port ----------------------------------------------------------
note "checks through the published port"
published=$(compose port app 8000)
if [[ "$published" == 127.0.0.1:* ]]; then
    pass "port 8000 published on loopback only ($published)"
else
    fail "port 8000 published on '$published', not 127.0.0.1"
fi
if ! "$py" scripts/docker_check_client.py "http://$published"; then
    failures+=("checks through the published port")
fi

# --- inside the container ----------------------------------------------------------------
note "the container"
# Every process of the container (server, forkserver, workers), by host PID and real UID.
mapfile -t procs < <(docker top "$cid" -eo pid,uid,args | tail -n +2)
printf '  %s\n' "${procs[@]}"
uids=$(printf '%s\n' "${procs[@]}" | awk '{ print $2 }' | sort -u | paste -sd, -)
if [[ "$uids" == 10001 ]]; then
    pass "all ${#procs[@]} processes run as UID 10001, none as root"
else
    fail "container processes run as UID(s) $uids, not only 10001"
fi
# PID 1 must be the server, not a shell around it: only PID 1 gets docker stop's SIGTERM, and
# a shell as PID 1 ignores it. The kernel names a script run through its #! line by the
# script, so for `boundarylab serve` argv is [python3, /usr/local/bin/boundarylab, serve].
pid1=$(docker inspect --format '{{.State.Pid}}' "$cid")
effective=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid1/status")
mapfile -d '' -t argv <"/proc/$pid1/cmdline"
[[ "${argv[0]##*/}" == python* ]] && argv=("${argv[@]:1}")
if [[ "${argv[0]##*/}" == boundarylab && "${argv[1]:-}" == serve
    && "$effective" == "10001 10001 10001 10001" ]]; then
    pass "PID 1 is the server itself (${argv[*]}) with UIDs $effective"
else
    fail "PID 1 is '$(tr '\0' ' ' <"/proc/$pid1/cmdline")' with UIDs (real, effective, saved, fs) $effective"
fi

hardening=$(docker inspect --format \
    '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.Memory}}' \
    "$cid")
read -r read_only cap_drop security memory <<<"$hardening"
if [[ "$read_only" == true && "$cap_drop" == "[ALL]" && "$security" == *no-new-privileges* \
    && "$memory" -gt 0 ]]; then
    pass "read-only root, cap_drop ALL, no-new-privileges, memory limit $((memory / 2**20)) MiB"
else
    fail "hardening not in force: $hardening"
fi
# Even root in the container cannot write the image's files; the server only needs /tmp.
if out=$(docker exec --user 0 "$cid" touch /probe 2>&1); then
    fail "the root filesystem is writable"
elif [[ "$out" == *"Read-only file system"* ]]; then
    pass "the root filesystem is read-only (as root: $out)"
else
    fail "writing / failed, but not because it is read-only: $out"
fi
usage=$(docker stats --no-stream --format '{{.MemUsage}}' "$cid")
echo "memory after the run: $usage"

# --- docker stop ---------------------------------------------------------------------------
note "docker stop"
# With --time 5 the engine sends SIGKILL after 5 s, and the exit code would be 137: exit code
# 0 proves the server ended by itself on SIGTERM within the limit. The time from the stop to
# the exit the engine recorded is that shutdown; the wall time of `docker stop` adds the
# engine's own teardown (network, mounts), which a busy machine can stretch.
stop_sent=$(date +%s%N)
docker stop --time "$STOP_LIMIT_S" "$cid" >/dev/null
stop_wall_ms=$((($(date +%s%N) - stop_sent) / 1000000))
read -r exit_code finished_at <<<"$(docker inspect --format '{{.State.ExitCode}} {{.State.FinishedAt}}' "$cid")"
exit_ms=$((($(date -d "$finished_at" +%s%N) - stop_sent) / 1000000))
if [[ "$exit_code" == 0 ]] && ((exit_ms <= STOP_LIMIT_S * 1000)); then
    pass "docker stop: the server exited with code 0 ${exit_ms} ms after SIGTERM (docker stop took ${stop_wall_ms} ms)"
else
    fail "docker stop: exit code $exit_code ${exit_ms} ms after SIGTERM (137: killed after ${STOP_LIMIT_S} s)"
    docker logs --tail 20 "$cid" 2>&1 || true
fi

# --- down ----------------------------------------------------------------------------------
note "docker-compose down"
compose down --volumes --remove-orphans --timeout 10
compose_up=false
label=com.docker.compose.project=$PROJECT
left=$(
    docker ps --all --quiet --filter "label=$label" | sed 's/^/container /'
    docker network ls --quiet --filter "label=$label" | sed 's/^/network /'
    docker volume ls --quiet --filter "label=$label" | sed 's/^/volume /'
)
if [[ -z "$left" ]]; then
    pass "docker-compose down left no container, network or volume of project $PROJECT"
else
    fail "left behind after down: $(echo "$left" | tr '\n' ' ')"
fi

# --- docker-compose.scale.yml: Redis, replicas behind nginx, workers ----------------------
# shellcheck source=scripts/docker_check_scale.sh
source "$repo/scripts/docker_check_scale.sh"

note "summary"
if ((${#failures[@]})); then
    printf 'docker check FAILED: %s\n' "${failures[@]}"
    exit 1
fi
echo "docker check: all checks passed in $((SECONDS - started)) s"
