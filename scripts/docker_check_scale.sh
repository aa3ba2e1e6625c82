# Sourced by scripts/docker_check.sh once its own checks are done (the engine is up, the
# app image $IMAGE is built): docker-compose.scale.yml for real. Redis, two web replicas
# behind nginx and `--scale worker=2`; a run POSTed through nginx and watched to the end
# over its WebSocket, through nginx too; then `down`, leaving nothing. Bounded throughout.
#
# No registry is reachable, so redis:7-alpine and nginx:1.27-alpine cannot be pulled: one
# stand-in from Debian's redis-server and nginx-light (debootstrap, as the Python one, and
# cached the same way) plays both, and an override file names it, the app image, and
# nginx's command (the official image's default). Uses docker_check.sh's pass/fail/note,
# $work, $py, $release, $mirror, $CACHE_DIR, $IMAGE.

SCALE_PROJECT=boundarylab-ci-scale
SCALE_PORT=8080      # what docker-compose.scale.yml publishes (on loopback)
SCALE_READY_S=180    # replicas answering with both workers alive
SERVICE_PACKAGES=(redis-server nginx-light)
scale_compose() {
    docker-compose --project-name "$SCALE_PROJECT" \
        --file "$repo/docker-compose.scale.yml" --file "$work/scale-override.yml" "$@"
}

note "stand-in for the redis and nginx images"
customise_services_rootfs() {
    local root=$1
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # Debian's default site also listens on 80 as default_server: only the repo's conf may.
    rm -f "$root"/etc/nginx/sites-enabled/default
}
services_key=$({
    echo "$release $mirror ${SERVICE_PACKAGES[*]}"
    declare -f customise_services_rootfs
} | sha256sum | cut -c1-16)
services=$BASE_REPO-services:$services_key
services_tarball=$CACHE_DIR/services-$services_key.tar.gz
if docker image inspect "$services" >/dev/null 2>&1; then
    echo "reusing $services from the engine"
else
    if [[ ! -s "$services_tarball" ]]; then
        echo "debootstrap $release (${SERVICE_PACKAGES[*]}) from the machine's apt mirror"
        rootfs=$CACHE_DIR/rootfs-services-$services_key
        rm -rf "$rootfs"
        include=$(IFS=,; echo "${SERVICE_PACKAGES[*]}")
        if ! timeout 1200 debootstrap --variant=minbase --include="$include" "$release" \
            "$rootfs" "$mirror" >"$work/debootstrap-services.log" 2>&1; then
            tail -20 "$work/debootstrap-services.log" >&2
            rm -rf "$rootfs"
            cannot_run "debootstrap of $release with ${SERVICE_PACKAGES[*]} failed"
        fi
        customise_services_rootfs "$rootfs"
        tar --numeric-owner -C "$rootfs" -c . | gzip -1 >"$services_tarball.partial"
        mv "$services_tarball.partial" "$services_tarball"
        rm -rf "$rootfs"
    fi
    docker import --change 'ENV LANG=C.UTF-8' "$services_tarball" "$services" >/dev/null
fi
find "$CACHE_DIR" -maxdepth 1 -name 'services-*.tar.gz' \
    ! -name "services-$services_key.tar.gz" -delete

cat >"$work/scale-override.yml" <<YAML
services:
  redis:
    image: $services
  web:
    image: $IMAGE
  worker:
    image: $IMAGE
  nginx:
    image: $services
    command: ["nginx", "-g", "daemon off;"]
YAML

note "docker-compose -f docker-compose.scale.yml up --scale worker=2"
scale_compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
if ! "$py" -c "import socket; socket.create_server(('127.0.0.1', $SCALE_PORT)).close()" \
    2>/dev/null; then
    cannot_run "127.0.0.1:$SCALE_PORT is in use: docker-compose.scale.yml publishes nginx there"
fi
scale_up=true
scale_start=$SECONDS
if ! timeout 300 docker-compose --project-name "$SCALE_PROJECT" \
    --file "$repo/docker-compose.scale.yml" --file "$work/scale-override.yml" \
    up --detach --no-build --scale web=2 --scale worker=2; then
    fail "docker-compose.scale.yml did not come up"
fi
running=$(scale_compose ps --quiet | wc -l)
echo "$running containers: $(scale_compose ps --services | paste -sd' ' -)"
if "$py" - "http://127.0.0.1:$SCALE_PORT" "$SCALE_READY_S" <<'PY'
import json, sys, time

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

base, ready_s = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + ready_s
health, in_a_row = None, 0
# Replicas up and both workers heard from in Redis: nginx takes turns between the replicas,
# so several ready answers in a row mean each replica answers (one may start later).
while time.monotonic() < deadline:
    try:
        health = httpx.get(f"{base}/api/health", timeout=5).json()
        in_a_row = in_a_row + 1 if health["workers"]["ready"] >= 2 else 0
    except (httpx.HTTPError, ValueError, KeyError):
        in_a_row = 0
    if in_a_row >= 6:
        break
    time.sleep(0.5)
else:
    sys.exit(f"not ready within {ready_s:.0f} s through nginx: {health}")
print(f"PASS: through nginx: Redis mode, {health['workers']['ready']} workers ready")
created = httpx.post(f"{base}/api/runs", json={"training": {"iterations": 3000}}, timeout=30)
assert created.status_code == 201, created.text
run_id = created.json()["id"]
ws_url = base.replace("http", "ws", 1) + f"/api/runs/{run_id}/stream"
messages = []


def open_stream(tries: int = 10):
    """The run's stream through nginx. Right after `up`, nginx may answer 502 while it finds
    which replicas answer; a bounded number of tries, and how many it took is printed."""
    for attempt in range(1, tries + 1):
        try:
            return connect(ws_url, max_size=None, open_timeout=30)
        except InvalidStatus as refused:
            if refused.response.status_code not in (502, 503) or attempt == tries:
                raise
            print(f"  stream: HTTP {refused.response.status_code} through nginx, try {attempt}")
            time.sleep(1)


with open_stream() as ws:
    while True:
        message = json.loads(ws.recv(120))
        messages.append(message)
        if message.get("status") in ("completed", "failed", "cancelled", "diverged") and (
            message["type"] in ("status", "snapshot")
        ):
            break
end = messages[-1]
assert end["status"] == "completed", end
history = [*messages[0]["history"], *(m for m in messages[1:] if m["type"] == "progress")]
assert history[-1]["iteration"] == 3000, history[-1]
# Round robin: every replica behind nginx knows the run (each reads it from Redis).
answers = {httpx.get(f"{base}/api/runs/{run_id}", timeout=30).status_code for _ in range(6)}
assert answers == {200}, answers
print(f"PASS: a run POSTed through nginx streamed to the end over its WebSocket "
      f"({len(messages)} messages, final loss {history[-1]['loss']:.4f}); GET on every replica")
PY
then
    :
else
    fail "docker-compose.scale.yml through nginx"
    scale_compose logs --tail 20 2>&1 | tail -60
fi
scale_compose down --volumes --remove-orphans --timeout 10
scale_up=false
left=$(docker ps --all --quiet --filter "label=com.docker.compose.project=$SCALE_PROJECT")
if [[ -z "$left" ]]; then
    pass "docker-compose.scale.yml: up, checked and down in $((SECONDS - scale_start)) s, nothing left"
else
    fail "docker-compose.scale.yml left containers: $left"
fi
