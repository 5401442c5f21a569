# Helpers for scripts/image_test.sh, sourced: the Docker engine, the Debian base image, the
# PostgreSQL and Redis images, and the local wheelhouse the image build installs from.
#
# Everything here is idempotent and cached: the engine is started only when it does not answer, and
# each image is rebuilt only when the hash of its inputs (written into a label) changed.

SB_CACHE="${SWITCHBOARD_IMAGE_CACHE:-$HOME/.cache/switchboard/image}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/switchboard-dockerd.log}"
# Debian's docker CLI (20.10) speaks BuildKit itself; a newer static CLI without the buildx plugin
# cannot, so prefer Debian's.
DOCKER="${DOCKER:-$([ -x /usr/bin/docker ] && echo /usr/bin/docker || command -v docker || echo docker)}"
export DOCKER_BUILDKIT=1

log() { printf '==> [%(%H:%M:%S)T] %s\n' -1 "$*"; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

engine_answers() { "$DOCKER" info >/dev/null 2>&1; }

# Install Debian's docker.io (and docker-compose, debootstrap) where missing. Returns non-zero when
# that is impossible here (no root, no apt): the caller skips the image test.
engine_install() {
    local missing=()
    [ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ] || missing+=(docker.io)
    [ -x /usr/bin/docker ] || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    docker_compose_cmd >/dev/null 2>&1 || missing+=(docker-compose)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || return 1
    [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null || return 1
    log "installing ${missing[*]} (Debian packages)"
    sudo_if_needed apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null || return 1
    DOCKER=/usr/bin/docker
}

# Start dockerd when it does not answer: host networking only (no bridge, no iptables rules),
# overlay2. Returns non-zero when it cannot start (e.g. no privileges for namespaces or mounts).
engine_start() {
    engine_answers && return 0
    # Starting an engine (and debootstrap after it) needs root.
    [ "$(id -u)" -eq 0 ] || return 1
    local dockerd
    dockerd="$(command -v dockerd || echo /usr/sbin/dockerd)"
    log "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    setsid nohup "$dockerd" --bridge=none --iptables=false --ip-masq=false --storage-driver=overlay2 \
        >>"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        engine_answers && return 0
        sleep 1
    done
    echo "dockerd did not answer within 60 s; the end of $DOCKERD_LOG:" >&2
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    return 1
}

# `docker compose` (v2 plugin) where present, else Debian's docker-compose (v1).
docker_compose_cmd() {
    if "$DOCKER" compose version >/dev/null 2>&1; then
        echo "$DOCKER compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo docker-compose
    else
        return 1
    fi
}

image_label() { "$DOCKER" image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

# The first Debian mirror apt uses on this machine (deb822 or one-line sources).
debian_mirror() {
    local uri
    uri="$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n 1)"
    [ -n "$uri" ] || uri="$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n 1)"
    echo "${uri:-http://deb.debian.org/debian}"
}

debian_suite() { . /etc/os-release && echo "${VERSION_CODENAME:-bookworm}"; }

# switchboard-base:<suite>: a minimal Debian with python3 and python3-venv, made with debootstrap
# from this machine's mirror (no image registry needed) and imported. Its apt sources are this
# machine's, so images built on it install Debian packages from the same mirror.
BASE_PACKAGES="python3,python3-venv,ca-certificates"
base_image_ensure() {
    local suite mirror key image root
    suite="$(debian_suite)"
    mirror="$(debian_mirror)"
    image="switchboard-base:$suite"
    key="$(printf '%s\n' "$suite" "$mirror" "$BASE_PACKAGES" "minbase" \
        "$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null)" | sha256sum | cut -c1-16)"
    if [ "$(image_label "$image" org.switchboard.inputs)" = "$key" ]; then
        log "base image $image is cached ($key)"
        return 0
    fi
    log "making $image with debootstrap ($suite from $mirror)"
    root="$(mktemp -d /tmp/switchboard-rootfs.XXXXXX)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$suite" "$root" "$mirror" \
        >"$SB_CACHE/debootstrap.log" 2>&1 || {
        tail -n 30 "$SB_CACHE/debootstrap.log" >&2
        rm -rf "$root"
        return 1
    }
    rm -f "$root/etc/apt/sources.list"
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        for source in /etc/apt/sources.list.d/*.sources; do
            grep -q '^URIs:.*debian' "$source" && cp "$source" "$root/etc/apt/sources.list.d/"
        done
    else
        grep -E '^deb .*debian' /etc/apt/sources.list >"$root/etc/apt/sources.list"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/*
    tar -C "$root" -c . | "$DOCKER" import \
        --change "LABEL org.switchboard.inputs=$key" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
    rm -rf "$root"
    log "made $image: $("$DOCKER" image inspect -f '{{.Size}}' "$image" | numfmt --to=iec)"
}

# An image from one of scripts/image/*.Dockerfile on the base image, cached on the hash of its files.
service_image_ensure() {
    local name="$1" image="$2" base="$3" dir key
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    key="$({
        cat "$dir/$name.Dockerfile"
        cat "$dir/$name"-* 2>/dev/null || true
        echo "$base" "$(image_label "$base" org.switchboard.inputs)"
    } | sha256sum | cut -c1-16)"
    if [ "$(image_label "$image" org.switchboard.inputs)" = "$key" ]; then
        log "$image is cached ($key)"
        return 0
    fi
    log "building $image"
    "$DOCKER" build --network host --build-arg "BASE_IMAGE=$base" --label "org.switchboard.inputs=$key" \
        -f "$dir/$name.Dockerfile" -t "$image" "$dir" >"$SB_CACHE/$name-build.log" 2>&1 || {
        tail -n 30 "$SB_CACHE/$name-build.log" >&2
        return 1
    }
}

# llama-cpp-python compiles for minutes; build its wheel once on this machine (for the image's
# portable CPU flags) and keep it, so image builds install it like any other wheel.
LLAMA_CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
llama_wheel_ensure() {
    local root="$1" pin key dir python
    if [ -n "${LLAMA_WHEEL_DIR:-}" ] && compgen -G "$LLAMA_WHEEL_DIR/llama_cpp_python-*.whl" >/dev/null; then
        log "llama-cpp-python wheel from LLAMA_WHEEL_DIR=$LLAMA_WHEEL_DIR"
        return 0
    fi
    pin="$(grep -iE '^llama-cpp-python==' "$root/requirements.txt" | head -n 1 | cut -d'=' -f3 | cut -d' ' -f1)"
    key="$(printf '%s\n' "$pin" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
    dir="$SB_CACHE/wheelhouse/llama-$key"
    if compgen -G "$dir/llama_cpp_python-$pin-*.whl" >/dev/null; then
        log "llama-cpp-python $pin wheel is cached ($dir)"
    else
        log "building the llama-cpp-python $pin wheel once (minutes; cached in $dir)"
        python="$(command -v python3.11 || command -v python3)"
        mkdir -p "$dir.tmp"
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$python" -m pip wheel --no-deps --no-cache-dir \
            "llama-cpp-python==$pin" -w "$dir.tmp" >"$SB_CACHE/llama-wheel.log" 2>&1 || {
            tail -n 30 "$SB_CACHE/llama-wheel.log" >&2
            return 1
        }
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    LLAMA_WHEEL_DIR="$dir"
}

# The local wheel folders and file:// indexes pip is configured with on this machine (pip config:
# find-links, extra-index-url), served read-only over http://127.0.0.1:$WHEELHOUSE_PORT for the
# image build (which runs with --network host), plus the prebuilt llama-cpp-python wheel. Sets
# WHEELHOUSE_FIND_LINKS and WHEELHOUSE_INDEXES (space-separated URLs) and WHEELHOUSE_PID.
# The port is fixed so the build arguments, and with them the build cache, stay the same.
WHEELHOUSE_PORT="${WHEELHOUSE_PORT:-18765}"
pip_config_values() {
    python3 -m pip config list 2>/dev/null | grep -E "(^|\.)$1=" | sed -E "s/^[^=]*='(.*)'$/\1/" \
        | tr ' ' '\n' | grep -v '^$' | awk '!seen[$0]++'
}
wheelhouse_serve() {
    local root="$SB_CACHE/wheelhouse-served" base="http://127.0.0.1:$WHEELHOUSE_PORT" n=0 location path
    rm -rf "$root" && mkdir -p "$root"
    WHEELHOUSE_FIND_LINKS="" WHEELHOUSE_INDEXES=""
    # The llama wheel's folder keeps its name (it holds the wheel's build key): a new wheel changes
    # the build argument, so the install layer is rebuilt with it.
    if [ -n "${LLAMA_WHEEL_DIR:-}" ]; then
        ln -s "$LLAMA_WHEEL_DIR" "$root/$(basename "$LLAMA_WHEEL_DIR")"
        WHEELHOUSE_FIND_LINKS="$base/$(basename "$LLAMA_WHEEL_DIR")/"
    fi
    for location in $(pip_config_values find-links); do
        path="${location#file://}"
        [ -d "$path" ] || continue
        n=$((n + 1)) && ln -s "$path" "$root/links$n"
        WHEELHOUSE_FIND_LINKS+="${WHEELHOUSE_FIND_LINKS:+ }$base/links$n/"
    done
    for location in $(pip_config_values extra-index-url) $(pip_config_values index-url); do
        case "$location" in file://*) path="${location#file://}" ;; *) continue ;; esac
        path="${path%/}"
        [ -d "$path" ] || continue
        # Link the index's parent: its pages point at ../../files/.
        n=$((n + 1)) && ln -s "$(dirname "$path")" "$root/index$n"
        WHEELHOUSE_INDEXES+="${WHEELHOUSE_INDEXES:+ }$base/index$n/$(basename "$path")/"
    done
    if (echo >"/dev/tcp/127.0.0.1/$WHEELHOUSE_PORT") 2>/dev/null; then
        echo "port $WHEELHOUSE_PORT is taken: set WHEELHOUSE_PORT" >&2
        return 1
    fi
    python3 -m http.server --bind 127.0.0.1 --directory "$root" "$WHEELHOUSE_PORT" \
        >"$SB_CACHE/wheelhouse-http.log" 2>&1 &
    WHEELHOUSE_PID=$!
    for _ in $(seq 1 50); do
        (echo >"/dev/tcp/127.0.0.1/$WHEELHOUSE_PORT") 2>/dev/null && break
        sleep 0.2
    done
    log "serving the local wheelhouse on $base (find-links: ${WHEELHOUSE_FIND_LINKS:-none}; indexes: ${WHEELHOUSE_INDEXES:-none})"
}
