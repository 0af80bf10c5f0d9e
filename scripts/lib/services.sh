#!/usr/bin/env bash
# shellcheck shell=bash
#
# Agora's local backing services (RabbitMQ, PostgreSQL, Redis, SMTP sink),
# run as private, loopback-only instances whose state lives in $AGORA_RUN_DIR
# so they never collide with system-wide services and need no Docker/systemd.
#
# Sourced by scripts/up, scripts/test and scripts/down. Public API:
#   agora_log / agora_die            messages prefixed "agora:" on stderr
#   agora_load_env                   defaults for every AGORA_* setting
#   agora_install_system_packages    apt-get install what is missing
#   agora_start_rabbitmq / agora_start_postgres / agora_start_redis /
#   agora_start_smtp_sink            idempotent start + wait for readiness
#   agora_start_payment_sandbox      the sandbox payment provider (sandboxes/payment_sandbox.py)
#   agora_start_sms_sandbox          the sandbox SMS provider, Twilio's API (sandboxes/sms_sandbox.py)
#   agora_rabbitmqctl ARGS...        rabbitmqctl against our node
#   agora_stop_all                   stop whatever of them is running
#   agora_test_services_env          switch to the test suite's own services (ports, data)
#   agora_stop_test_services         stop those (agora_provision_test_services in app.sh starts them)
#
# Every function reports failure through its return status rather than
# relying on `set -e`, because bash suspends errexit inside any function
# called from `if`, `||` or `&&` -- exactly how callers use these.

# Only strict mode for scripts: sourcing into an interactive shell with
# errexit would make the first failing command close the terminal.
[[ $- == *i* ]] || set -euo pipefail

# Resolved once at source time: a relative BASH_SOURCE breaks after a `cd`.
_AGORA_LIB_DIR=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

agora_log() {
    printf 'agora: %s\n' "$*" >&2
}

agora_die() {
    printf 'agora: error: %s\n' "$*" >&2
    exit 1
}

# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

agora_load_env() {
    if [[ -z ${AGORA_ROOT:-} ]]; then
        AGORA_ROOT=$(cd -P -- "$_AGORA_LIB_DIR/../.." && pwd) || return 1
    fi
    : "${AGORA_RUN_DIR:=$AGORA_ROOT/.run}"
    # Servers are started from their own directories, so a relative path
    # would resolve differently for each of them.
    [[ $AGORA_RUN_DIR == /* ]] || AGORA_RUN_DIR=$PWD/$AGORA_RUN_DIR
    : "${AGORA_HOST:=127.0.0.1}"

    : "${AGORA_RABBITMQ_PORT:=5672}"
    : "${AGORA_RABBITMQ_MANAGEMENT_PORT:=15672}"
    : "${AGORA_RABBITMQ_DIST_PORT:=25672}"
    : "${AGORA_EPMD_PORT:=4369}"
    : "${AGORA_POSTGRES_PORT:=5432}"
    : "${AGORA_REDIS_PORT:=6379}"
    : "${AGORA_SMTP_PORT:=1025}"
    : "${AGORA_SMTP_HTTP_PORT:=1080}"
    : "${AGORA_PAYMENT_SANDBOX_PORT:=1090}"
    : "${AGORA_SMS_SANDBOX_PORT:=1091}"
    : "${AGORA_HTTP_PORT:=8080}"
    : "${AGORA_WORKER_HTTP_PORT_BASE:=8100}"

    : "${AGORA_AMQP_URL:=amqp://agora:agora@$AGORA_HOST:$AGORA_RABBITMQ_PORT/}"
    : "${AGORA_DATABASE_URL:=postgresql+asyncpg://agora:agora@$AGORA_HOST:$AGORA_POSTGRES_PORT/agora}"
    : "${AGORA_REDIS_URL:=redis://$AGORA_HOST:$AGORA_REDIS_PORT/0}"
    : "${AGORA_SMTP_HOST:=$AGORA_HOST}"
    : "${AGORA_PAYMENT_API_URL:=http://$AGORA_HOST:$AGORA_PAYMENT_SANDBOX_PORT}"
    # Where the payment sandbox sends its signed webhook events: the edge's endpoint.
    : "${AGORA_PAYMENT_SANDBOX_WEBHOOK_URL:=http://$AGORA_HOST:$AGORA_HTTP_PORT/api/payments/webhook}"
    : "${AGORA_TWILIO_API_URL:=http://$AGORA_HOST:$AGORA_SMS_SANDBOX_PORT}"

    # Tool locations and timeouts, so an unusual machine needs no edits here.
    : "${AGORA_PYTHON:=$AGORA_ROOT/.venv/bin/python}"
    : "${AGORA_PG_BINDIR:=/usr/lib/postgresql/15/bin}"
    # Debian's /usr/sbin/rabbitmq* wrappers `su rabbitmq` when run as root,
    # which resets HOME (so the wrong Erlang cookie) and cds to /var/lib;
    # the unwrapped scripts honour our environment as-is.
    : "${AGORA_RABBITMQ_BINDIR:=/usr/lib/rabbitmq/bin}"
    : "${AGORA_RABBITMQ_NODENAME:=agora@localhost}"
    : "${AGORA_RABBITMQ_START_TIMEOUT:=60}"
    : "${AGORA_START_TIMEOUT:=30}"

    export AGORA_ROOT AGORA_RUN_DIR AGORA_HOST \
        AGORA_RABBITMQ_PORT AGORA_RABBITMQ_MANAGEMENT_PORT \
        AGORA_RABBITMQ_DIST_PORT AGORA_EPMD_PORT AGORA_POSTGRES_PORT \
        AGORA_REDIS_PORT AGORA_SMTP_PORT AGORA_SMTP_HTTP_PORT \
        AGORA_HTTP_PORT AGORA_WORKER_HTTP_PORT_BASE \
        AGORA_AMQP_URL AGORA_DATABASE_URL AGORA_REDIS_URL AGORA_SMTP_HOST \
        AGORA_PAYMENT_SANDBOX_PORT AGORA_PAYMENT_API_URL AGORA_PAYMENT_SANDBOX_WEBHOOK_URL \
        AGORA_SMS_SANDBOX_PORT AGORA_TWILIO_API_URL \
        AGORA_PYTHON AGORA_PG_BINDIR AGORA_RABBITMQ_BINDIR \
        AGORA_RABBITMQ_NODENAME AGORA_RABBITMQ_START_TIMEOUT \
        AGORA_START_TIMEOUT
}

# The test suite's own backing services: RabbitMQ, PostgreSQL, Redis and the SMTP
# sink on ports and data (.run/test-services) of their own. Tests stop, kill and
# restart these; a stack started by scripts/up is never touched. Call it before
# agora_load_env. AGORA_TEST_PORT_BASE (default 18000) moves them all.
agora_test_services_env() {
    if [[ -z ${AGORA_ROOT:-} ]]; then
        AGORA_ROOT=$(cd -P -- "$_AGORA_LIB_DIR/../.." && pwd) || return 1
    fi
    local base=${AGORA_TEST_PORT_BASE:-18000}
    AGORA_RUN_DIR=$AGORA_ROOT/.run/test-services${AGORA_TEST_PORT_BASE:+-$AGORA_TEST_PORT_BASE}
    AGORA_RABBITMQ_PORT=$((base + 672))
    AGORA_RABBITMQ_MANAGEMENT_PORT=$((base + 673))
    AGORA_RABBITMQ_DIST_PORT=$((base + 674))
    AGORA_RABBITMQ_NODENAME=agora-test${AGORA_TEST_PORT_BASE:+-$AGORA_TEST_PORT_BASE}@localhost
    AGORA_POSTGRES_PORT=$((base + 432))
    AGORA_REDIS_PORT=$((base + 379))
    AGORA_SMTP_PORT=$((base + 25))
    AGORA_SMTP_HTTP_PORT=$((base + 26))
    # Derived from the ports by agora_load_env; a development shell's values must not leak in.
    unset AGORA_AMQP_URL AGORA_DATABASE_URL AGORA_REDIS_URL AGORA_SMTP_HOST
    export AGORA_ROOT AGORA_RUN_DIR AGORA_RABBITMQ_PORT AGORA_RABBITMQ_MANAGEMENT_PORT \
        AGORA_RABBITMQ_DIST_PORT AGORA_RABBITMQ_NODENAME AGORA_POSTGRES_PORT AGORA_REDIS_PORT \
        AGORA_SMTP_PORT AGORA_SMTP_HTTP_PORT
}

# Stops them (scripts/lib/app.sh agora_provision_test_services starts them), in a
# subshell so the caller keeps its own settings.
agora_stop_test_services() (
    agora_test_services_env && agora_load_env || exit 1
    _agora_stop_smtp_sink
    _agora_stop_redis
    _agora_stop_postgres
    _agora_stop_rabbitmq
)

# --------------------------------------------------------------------------
# Internal helpers
# --------------------------------------------------------------------------

# True if something accepts TCP connections on host:port. Uses bash's
# /dev/tcp so no iproute2/netcat is needed; `timeout` bounds the connect
# in case AGORA_HOST is not actually local.
# shellcheck disable=SC2016  # the inner script expands its own arguments
_agora_port_open() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# Fails with a one-line, actionable message if the port is taken.
_agora_require_free_port() {
    local service=$1 port=$2 var=$3 host=${4:-$AGORA_HOST}
    if _agora_port_open "$host" "$port"; then
        agora_log "error: cannot start $service: port $port on $host is already in use by another process; set $var to a free port (or stop that process)"
        return 1
    fi
}

# Prints the HTTP status code of GET http://host:port/path, optionally with
# basic auth "user:pass". Plain /dev/tcp again: curl is not on a fresh Debian.
# shellcheck disable=SC2016  # the inner script expands its own arguments
_agora_http_status() {
    local auth_header=""
    if [[ -n ${4:-} ]]; then
        auth_header="Authorization: Basic $(printf '%s' "$4" | base64 -w0)"$'\r\n'
    fi
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s:%s\r\n%s\r\n" "$2" "$0" "$1" "$3" >&3
        IFS=" " read -r _ code _ <&3 || exit 1
        printf "%s\n" "$code"
    ' "$1" "$2" "$3" "$auth_header" 2>/dev/null
}

# True while the process exists and is not a zombie. Daemons end up
# parented to init, and until init reaps them kill -0 still succeeds, which
# made every stop wait for the reaper (seconds) instead of the exit.
_agora_pid_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # The state letter follows the parenthesised command name.
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# Process group id of a live process (from /proc: procps may be absent).
_agora_pgid() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # Fields after the name: state ppid pgrp ...
    read -r _ _ stat _ <<<"$stat"
    printf '%s\n' "$stat"
}

# True while a live (non-zombie) process in process group $1 has $2 in its
# command line; the pattern keeps a stale, reused group id from matching.
_agora_group_running() {
    local pgid=$1 pattern=$2 proc stat cmdline
    for proc in /proc/[0-9]*; do
        stat=$(cat "$proc/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        read -r -a stat <<<"$stat"
        [[ ${stat[2]} == "$pgid" && ${stat[0]} != Z ]] || continue
        cmdline=$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null) || continue
        [[ $cmdline == *$pattern* ]] && return 0
    done
    return 1
}

# Prints the pid recorded in a pid file if that process is alive and its
# command line matches the pattern (guards against a recycled pid).
_agora_live_pid() {
    local file=$1 pattern=$2 pid cmdline
    [[ -r $file ]] || return 1
    pid=$(head -n 1 -- "$file" 2>/dev/null | tr -dc '0-9') || return 1
    [[ -n $pid ]] || return 1
    _agora_pid_running "$pid" || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *$pattern* ]] || return 1
    printf '%s\n' "$pid"
}

# Waits (bounded) for a process to exit; SIGKILLs it as a last resort.
_agora_wait_pid_gone() {
    local pid=$1 timeout=$2 deadline
    deadline=$((SECONDS + timeout))
    while _agora_pid_running "$pid"; do
        if ((SECONDS >= deadline)); then
            agora_log "pid $pid did not exit within ${timeout}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            return 0
        fi
        sleep 0.2
    done
}

_agora_tail_logs() {
    local f shown=0
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf 'agora: ---- last 30 lines of %s ----\n' "$f" >&2
        tail -n 30 -- "$f" >&2
        shown=1
    done
    if ((!shown)); then
        agora_log "(nothing was logged to $*)"
    fi
}

# The one "wait until healthy" loop of every start function: polls CHECK
# for at most TIMEOUT seconds; on failure logs why, shows the tail of each
# LOG and returns 1. Past the deadline: "error: FAILURE", then the --stop
# command runs (how a caller stops a server it launched). If the watched
# process is gone first: "error: NAME exited during startup", no stop.
#
# _agora_wait_healthy NAME TIMEOUT CHECK FAILURE [OPTION...] -- LOG...
#   CHECK is passed the seconds left (<= 0 once out), for checks that block.
#   --every SECS            pause between polls (default 0.2)
#   --pid PID               watch this process, and/or
#   --pidfile FILE PATTERN  the one _agora_live_pid finds (either will do)
#   --grace SECS            leave the watched process unjudged at first
#   --stop CMD              run on timeout (default: nothing)
_agora_wait_healthy() {
    local name=$1 timeout=$2 check=$3 failure=$4
    shift 4
    local every=0.2 pid="" pidfile="" pattern="" grace=0 stop=:
    while (($#)); do
        case $1 in
        --every) every=$2; shift 2 ;;
        --pid) pid=$2; shift 2 ;;
        --pidfile) pidfile=$2 pattern=$3; shift 3 ;;
        --grace) grace=$2; shift 2 ;;
        --stop) stop=$2; shift 2 ;;
        --) shift; break ;;
        *)
            agora_log "error: _agora_wait_healthy: unknown option $1"
            return 1
            ;;
        esac
    done

    local started=$SECONDS deadline remaining
    deadline=$((started + timeout))
    while :; do
        remaining=$((deadline - SECONDS))
        "$check" "$remaining" && return 0
        if ((SECONDS >= deadline)); then
            agora_log "error: $failure"
            _agora_tail_logs "$@"
            "$stop"
            return 1
        fi
        if [[ -n $pid$pidfile ]] && ((SECONDS - started >= grace)) &&
            ! { [[ -n $pid ]] && _agora_pid_running "$pid"; } &&
            ! { [[ -n $pidfile ]] && _agora_live_pid "$pidfile" "$pattern" >/dev/null; }; then
            agora_log "error: $name exited during startup"
            _agora_tail_logs "$@"
            return 1
        fi
        sleep "$every"
    done
}

# Each instance records the settings it was started with. A running
# instance whose settings differ from the current environment cannot be
# reused, and two instances must not share one data directory, so we refuse
# rather than silently kill something a developer is using.
_agora_check_signature() {
    local service=$1 dir=$2 have=$3 wanted=$4
    if [[ $have != "$wanted" ]]; then
        agora_log "error: $service from $dir is already running with different settings (${have:-unknown}; wanted $wanted); run scripts/down first or use another AGORA_RUN_DIR"
        return 1
    fi
}

_agora_read_signature() {
    cat -- "$1/instance" 2>/dev/null || true
}

# --------------------------------------------------------------------------
# System packages
# --------------------------------------------------------------------------

_agora_pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# Runs in a subshell so the EXIT trap that restores policy-rc.d cannot leak
# into the caller.
agora_install_system_packages() (
    agora_load_env || exit 1
    local -a missing=()
    local pkg
    # chromium: Debian's browser, for tests/browser (Playwright drives it; it downloads none).
    for pkg in rabbitmq-server redis-server postgresql-15 chromium; do
        _agora_pkg_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && exit 0

    if ((EUID != 0)); then
        agora_log "error: missing system packages (${missing[*]}); run this as root or install them with apt-get"
        exit 1
    fi
    mkdir -p -- "$AGORA_RUN_DIR" || exit 1
    local apt_log=$AGORA_RUN_DIR/apt.log
    local policy=/usr/sbin/policy-rc.d backup=""

    # The packages' maintainer scripts would otherwise start system-wide
    # instances on the default ports, which would then collide with ours.
    if [[ -e $policy ]]; then
        backup=$(mktemp /usr/sbin/policy-rc.d.agora.XXXXXX) || exit 1
        cp -p -- "$policy" "$backup" || exit 1
    fi
    # shellcheck disable=SC2317  # invoked via trap
    _agora_restore_policy() {
        if [[ -n $backup ]]; then
            mv -f -- "$backup" "$policy"
        else
            rm -f -- "$policy"
        fi
    }
    trap _agora_restore_policy EXIT
    # Turn Ctrl-C/kill into a normal exit so the EXIT trap still restores.
    trap 'exit 130' INT TERM
    { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"; } || exit 1

    agora_log "installing ${missing[*]} (log: $apt_log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! {
        apt-get -o DPkg::Lock::Timeout=300 update &&
            apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
    } >"$apt_log" 2>&1; then
        agora_log "error: apt-get failed installing ${missing[*]}"
        _agora_tail_logs "$apt_log"
        exit 1
    fi
)

# --------------------------------------------------------------------------
# RabbitMQ
# --------------------------------------------------------------------------

_agora_rabbitmq_dir() { printf '%s\n' "$AGORA_RUN_DIR/rabbitmq"; }

# Erlang distribution (epmd, the node's dist port, every rabbitmqctl call)
# reaches the node through its name's host part, "localhost", i.e.
# 127.0.0.1 -- whatever AGORA_HOST is. Binding it to AGORA_HOST instead
# broke the CLI as soon as AGORA_HOST was e.g. 127.0.0.2.
_AGORA_ERL_DIST_HOST=127.0.0.1

# Exports the environment of our private node into the current (sub)shell.
# Every rabbitmq script re-reads these, so the server and each CLI call
# agree on node name, cookie (in $HOME) and epmd, and never consult
# /etc/rabbitmq. Only ever called inside a subshell.
_agora_rabbitmq_env() {
    local dir
    dir=$(_agora_rabbitmq_dir)
    cd -- "$dir" || return 1
    export HOME=$dir
    export RABBITMQ_NODENAME=$AGORA_RABBITMQ_NODENAME
    export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
    export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
    export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
    export RABBITMQ_MNESIA_BASE=$dir/mnesia
    export RABBITMQ_LOG_BASE=$dir/log
    export RABBITMQ_LOGS=$dir/log/rabbit.log
    export RABBITMQ_PID_FILE=$dir/rabbitmq.pid
    export RABBITMQ_DIST_PORT=$AGORA_RABBITMQ_DIST_PORT
    export ERL_EPMD_ADDRESS=$_AGORA_ERL_DIST_HOST
    export ERL_EPMD_PORT=$AGORA_EPMD_PORT
    # The CLI is itself an Erlang node with a listener; keep it local.
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {${_AGORA_ERL_DIST_HOST//./,}}"
}

# Runs a command with our node's environment.
_agora_rabbitmq_exec() {
    (_agora_rabbitmq_env && exec "$@")
}

agora_rabbitmqctl() {
    agora_load_env || return 1
    _agora_rabbitmq_exec "$AGORA_RABBITMQ_BINDIR/rabbitmqctl" "$@"
}

# rabbitmqctl with a hard time limit, for our own calls: never hang.
_agora_rabbitmqctl_bounded() {
    local seconds=$1
    shift
    _agora_rabbitmq_exec timeout "$seconds" "$AGORA_RABBITMQ_BINDIR/rabbitmqctl" "$@"
}

_agora_rabbitmq_signature() {
    printf 'host=%s amqp=%s management=%s dist=%s epmd=%s node=%s\n' \
        "$AGORA_HOST" "$AGORA_RABBITMQ_PORT" "$AGORA_RABBITMQ_MANAGEMENT_PORT" \
        "$AGORA_RABBITMQ_DIST_PORT" "$AGORA_EPMD_PORT" "$AGORA_RABBITMQ_NODENAME"
}

_agora_rabbitmq_healthy() {
    _agora_port_open "$AGORA_HOST" "$AGORA_RABBITMQ_PORT" &&
        [[ $(_agora_http_status "$AGORA_HOST" "$AGORA_RABBITMQ_MANAGEMENT_PORT" \
            /api/health/checks/alarms agora:agora) == 200 ]]
}

_agora_rabbitmq_write_config() {
    local dir=$1
    # Regenerated on every start so changed AGORA_* ports take effect.
    # The default_* keys only apply when the node boots with an empty
    # database: it then never creates "guest" at all.
    {
        echo "# Generated by scripts/lib/services.sh on each start; edits are lost."
        echo "listeners.tcp.1 = $AGORA_HOST:$AGORA_RABBITMQ_PORT"
        echo "management.tcp.ip = $AGORA_HOST"
        echo "management.tcp.port = $AGORA_RABBITMQ_MANAGEMENT_PORT"
        echo "distribution.listener.interface = $_AGORA_ERL_DIST_HOST"
        echo "distribution.listener.port_range.min = $AGORA_RABBITMQ_DIST_PORT"
        echo "distribution.listener.port_range.max = $AGORA_RABBITMQ_DIST_PORT"
        echo "default_vhost = /"
        echo "default_user = agora"
        echo "default_pass = agora"
        echo "default_user_tags.administrator = true"
        # May publish with another user's user_id: replays and the tests' stand-ins.
        echo "default_user_tags.impersonator = true"
        echo "default_permissions.configure = .*"
        echo "default_permissions.read = .*"
        echo "default_permissions.write = .*"
        echo "log.file.level = info"
        echo "log.console = false"
    } >"$dir/rabbitmq.conf" || return 1
    echo '[rabbitmq_management].' >"$dir/enabled_plugins" || return 1
    # Present but empty: stops rabbitmq-env from sourcing /etc's copy.
    : >"$dir/rabbitmq-env.conf"
}

# Makes sure agora/agora is an administrator with full rights on "/" and
# that "guest" is gone. Fresh nodes already are (see default_user above), so
# first check cheaply over HTTP and only pay for rabbitmqctl calls (~1 s
# each) when a data directory predates that config.
_agora_rabbitmq_ensure_users() {
    local mgmt=$AGORA_RABBITMQ_MANAGEMENT_PORT
    if [[ $(_agora_http_status "$AGORA_HOST" "$mgmt" /api/users/guest agora:agora) == 404 &&
        $(_agora_http_status "$AGORA_HOST" "$mgmt" /api/permissions/%2F/agora agora:agora) == 200 &&
        -f $(_agora_rabbitmq_dir)/admin-tags-v2 ]]; then
        return 0
    fi
    agora_log "rabbitmq: provisioning user agora and removing guest"
    if ! _agora_rabbitmqctl_bounded 30 -q add_user agora agora >/dev/null 2>&1; then
        _agora_rabbitmqctl_bounded 30 -q change_password agora agora >/dev/null || return 1
    fi
    _agora_rabbitmqctl_bounded 30 -q set_user_tags agora administrator impersonator >/dev/null || return 1
    : >"$(_agora_rabbitmq_dir)/admin-tags-v2"
    _agora_rabbitmqctl_bounded 30 -q set_permissions -p / agora '.*' '.*' '.*' >/dev/null || return 1
    _agora_rabbitmqctl_bounded 30 -q delete_user guest >/dev/null 2>&1 || true
}

# epmd is shared by every Erlang node on the port. Reuse a running one;
# otherwise start our own (loopback-only) and remember that, so stop can
# take it down again.
_agora_ensure_epmd() {
    local dir=$1 host=$_AGORA_ERL_DIST_HOST
    if _agora_port_open "$host" "$AGORA_EPMD_PORT"; then
        # Bounded: a non-epmd listener may never answer the query.
        if ! timeout 3 epmd -port "$AGORA_EPMD_PORT" -names >/dev/null 2>&1; then
            agora_log "error: cannot start rabbitmq: port $AGORA_EPMD_PORT on $host is in use by something that is not epmd; set AGORA_EPMD_PORT to a free port (or stop that process)"
            return 1
        fi
        return 0
    fi
    ERL_EPMD_ADDRESS=$host epmd -port "$AGORA_EPMD_PORT" -daemon \
        </dev/null >/dev/null 2>&1 || {
        agora_log "error: could not start epmd on $host:$AGORA_EPMD_PORT"
        return 1
    }
    echo "$AGORA_EPMD_PORT" >"$dir/epmd.started"
    # -daemon returns before epmd listens; the node must not race it.
    for _ in {1..50}; do
        timeout 3 epmd -port "$AGORA_EPMD_PORT" -names >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    agora_log "error: epmd did not come up on $host:$AGORA_EPMD_PORT"
    return 1
}

# await_startup fails fast while the node is not yet registered with epmd,
# so it is polled; `timeout` guards against a wedged CLI. Takes the seconds
# left and waits no longer than that.
_agora_rabbitmq_booted() {
    local remaining=$1
    ((remaining > 0)) &&
        _agora_rabbitmqctl_bounded "$((remaining + 2))" -q await_startup --timeout "$remaining" \
            >/dev/null 2>&1
}

_agora_rabbitmq_management_up() {
    [[ $(_agora_http_status "$AGORA_HOST" "$AGORA_RABBITMQ_MANAGEMENT_PORT" /api/overview) == 401 ]]
}

# Waits for our node to finish booting, then provisions users. Prints the
# logs and fails on timeout or if the node dies.
_agora_rabbitmq_wait_ready() {
    local dir=$1 launcher_pid=$2 deadline
    local log=$dir/log/rabbit.log startup_log=$dir/log/startup.log
    deadline=$((SECONDS + AGORA_RABBITMQ_START_TIMEOUT))
    # Alive while the launcher or the beam it writes to the pid file is. No
    # --stop: agora_start_rabbitmq kills the node only if it launched it.
    _agora_wait_healthy rabbitmq "$AGORA_RABBITMQ_START_TIMEOUT" _agora_rabbitmq_booted \
        "rabbitmq did not become ready within ${AGORA_RABBITMQ_START_TIMEOUT}s" \
        --every 1 --pid "$launcher_pid" --pidfile "$dir/rabbitmq.pid" beam \
        -- "$log" "$startup_log" || return 1

    # The management listener starts with the app; allow it a moment anyway
    # (what is left of the same deadline).
    _agora_wait_healthy rabbitmq "$((deadline - SECONDS))" _agora_rabbitmq_management_up \
        "rabbitmq management plugin not answering on $AGORA_HOST:$AGORA_RABBITMQ_MANAGEMENT_PORT" \
        --every 0.5 -- "$log" || return 1
    if ! _agora_rabbitmq_ensure_users; then
        agora_log "error: could not provision rabbitmq user agora"
        _agora_tail_logs "$log"
        return 1
    fi
}

agora_start_rabbitmq() {
    agora_load_env || return 1
    local dir sig pid launcher_pid
    dir=$(_agora_rabbitmq_dir)
    sig=$(_agora_rabbitmq_signature)

    if pid=$(_agora_live_pid "$dir/rabbitmq.pid" beam); then
        _agora_check_signature rabbitmq "$dir" "$(_agora_read_signature "$dir")" "$sig" || return 1
        if _agora_rabbitmq_healthy; then
            agora_log "rabbitmq already running (pid $pid)"
            return 0
        fi
        # Ours but not answering: either still booting (just wait) or a test
        # left the app stopped via `stop_app`, which await_startup would
        # never outwait.
        if [[ $(_agora_rabbitmqctl_bounded 15 -q eval 'rabbit_boot_state:get().' 2>/dev/null) == stopped ]]; then
            agora_log "rabbitmq node is up but its app was stopped; running start_app"
            _agora_rabbitmqctl_bounded "$AGORA_RABBITMQ_START_TIMEOUT" -q start_app >/dev/null 2>&1 || true
        fi
        # Not started by this call, so leave it running even if it fails.
        _agora_rabbitmq_wait_ready "$dir" "$pid" || return 1
    else
        # Clear out a node left half-started by an interrupted earlier call
        # (it has no pid file yet, but would clash on the node name).
        _agora_rabbitmq_kill "$dir"
        _agora_require_free_port rabbitmq "$AGORA_RABBITMQ_PORT" AGORA_RABBITMQ_PORT || return 1
        _agora_require_free_port rabbitmq "$AGORA_RABBITMQ_MANAGEMENT_PORT" AGORA_RABBITMQ_MANAGEMENT_PORT || return 1
        _agora_require_free_port rabbitmq "$AGORA_RABBITMQ_DIST_PORT" AGORA_RABBITMQ_DIST_PORT "$_AGORA_ERL_DIST_HOST" || return 1
        mkdir -p -- "$dir/log" "$dir/mnesia" || return 1
        _agora_ensure_epmd "$dir" || return 1
        _agora_rabbitmq_write_config "$dir" || return 1
        printf '%s\n' "$sig" >"$dir/instance"
        : >"$dir/log/startup.log"

        agora_log "starting rabbitmq on $AGORA_HOST:$AGORA_RABBITMQ_PORT (management $AGORA_RABBITMQ_MANAGEMENT_PORT)"
        # setsid: survives Ctrl-C in the calling terminal, and makes the
        # server script the leader of a process group holding the whole
        # node, so it can be killed as one even before it writes its pid
        # file. The `&` runs in a subshell without job control, so setsid
        # execs rather than forks and $! is that leader.
        launcher_pid=$(
            _agora_rabbitmq_env || exit 1
            setsid "$AGORA_RABBITMQ_BINDIR/rabbitmq-server" \
                </dev/null >>"$dir/log/startup.log" 2>&1 &
            echo $!
        ) || return 1
        printf '%s\n' "$launcher_pid" >"$dir/rabbitmq.pgid"
        if ! _agora_rabbitmq_wait_ready "$dir" "$launcher_pid"; then
            # A half-booted node would make the next attempt wait on it.
            _agora_rabbitmq_kill "$dir"
            return 1
        fi
    fi
    agora_log "rabbitmq ready: $AGORA_AMQP_URL (management http://$AGORA_HOST:$AGORA_RABBITMQ_MANAGEMENT_PORT)"
}

# Signals instead of rabbitmqctl, for a node that is wedged or unreachable
# (e.g. stuck in prelaunch): TERM, then KILL, to its whole process group.
_agora_rabbitmq_kill() {
    local dir=$1 pgid="" pid
    [[ -r $dir/rabbitmq.pgid ]] && pgid=$(tr -dc '0-9' <"$dir/rabbitmq.pgid")
    if [[ -z $pgid ]] && pid=$(_agora_live_pid "$dir/rabbitmq.pid" beam); then
        pgid=$(_agora_pgid "$pid")
    fi
    if [[ -n $pgid ]] && _agora_group_running "$pgid" rabbit; then
        agora_log "killing rabbitmq (process group $pgid)"
        kill -TERM -- "-$pgid" 2>/dev/null || true
        local deadline=$((SECONDS + 15))
        while _agora_group_running "$pgid" rabbit && ((SECONDS < deadline)); do
            sleep 0.2
        done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    rm -f -- "$dir/rabbitmq.pid" "$dir/rabbitmq.pgid"
    _agora_stop_epmd "$dir"
}

_agora_stop_epmd() {
    local dir=$1
    [[ -f $dir/epmd.started ]] || return 0
    # Refuses (harmlessly) while any other node is still registered.
    timeout 3 epmd -port "$(cat -- "$dir/epmd.started")" -kill >/dev/null 2>&1 || true
    rm -f -- "$dir/epmd.started"
}

_agora_stop_rabbitmq() {
    local dir pid
    dir=$(_agora_rabbitmq_dir)
    if pid=$(_agora_live_pid "$dir/rabbitmq.pid" beam); then
        agora_log "stopping rabbitmq (pid $pid)"
        # `shutdown` returns only once the VM has exited (~7 s: the
        # management stats collector alone takes 5 s to stop).
        if ! _agora_rabbitmqctl_bounded 60 -q shutdown >/dev/null 2>&1; then
            _agora_rabbitmq_kill "$dir"
        fi
        _agora_wait_pid_gone "$pid" 30
    fi
    # Also reaps a node that died or hung before writing its pid file.
    _agora_rabbitmq_kill "$dir"
}

# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

# initdb and postgres refuse to run as root, so as root we use the Debian
# package's "postgres" account; as anyone else, just ourselves.
_agora_pg_as() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_agora_pg_dir() { printf '%s\n' "$AGORA_RUN_DIR/postgres"; }

# Unix socket paths are limited to 107 bytes; fall back to a short
# per-checkout directory in /tmp when the run dir is deeply nested.
_agora_pg_socket_dir() {
    local sock
    sock="$(_agora_pg_dir)/socket"
    if ((${#sock} + ${#AGORA_POSTGRES_PORT} + 10 > 107)); then
        sock="/tmp/agora-pg-$(printf '%s' "$sock" | md5sum | cut -c1-12)"
    fi
    printf '%s\n' "$sock"
}

# Superuser psql over the private socket (trust auth; the socket directory is
# 0700 so only the postgres account and root can reach it).
_agora_pg_psql() {
    local sock
    sock=$(_agora_pg_socket_dir)
    # PGOPTIONS: hush "already exists, skipping" notices on every start.
    (cd -- "$(_agora_pg_dir)" &&
        PGOPTIONS='-c client_min_messages=warning' \
            _agora_pg_as timeout 60 "$AGORA_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
            -h "$sock" -p "$AGORA_POSTGRES_PORT" -U postgres "$@")
}

_agora_pg_ready() {
    "$AGORA_PG_BINDIR/pg_isready" -q -h "$AGORA_HOST" -p "$AGORA_POSTGRES_PORT" -t 2 >/dev/null 2>&1
}

_agora_pg_write_config() {
    local data=$1 sock=$2 owner=$3
    # Regenerated on every start so changed AGORA_* settings take effect;
    # pulled in by an include line so initdb's postgresql.conf stays stock.
    cat >"$data/agora.conf" <<EOF || return 1
# Generated by scripts/lib/services.sh on each start; edits are lost.
listen_addresses = '$AGORA_HOST'
port = $AGORA_POSTGRES_PORT
unix_socket_directories = '$sock'
max_connections = 200
shared_buffers = 128MB
fsync = on
password_encryption = scram-sha-256
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = off
EOF
    if ! grep -qx "include_if_exists = 'agora.conf'" "$data/postgresql.conf"; then
        echo "include_if_exists = 'agora.conf'" >>"$data/postgresql.conf" || return 1
    fi
    # Passwords over TCP from loopback (and AGORA_HOST if it is not);
    # the private socket is trusted.
    {
        echo "# Generated by scripts/lib/services.sh on each start; edits are lost."
        echo "local all all trust"
        # Streaming replication (scripts/pg-pair) over the same private socket.
        echo "local replication all trust"
        echo "host all all 127.0.0.0/8 scram-sha-256"
        echo "host all all ::1/128 scram-sha-256"
        if [[ $AGORA_HOST =~ ^[0-9.]+$ && $AGORA_HOST != 127.* ]]; then
            echo "host all all $AGORA_HOST/32 scram-sha-256"
        fi
    } >"$data/pg_hba.conf" || return 1
    if ((EUID == 0)); then
        chown "$owner" "$data/agora.conf" "$data/pg_hba.conf" || return 1
    fi
}

# Idempotent: role, both databases, pg_trgm (needs superuser to create). A standby
# (scripts/pg-pair) is read-only and gets all of it from its primary.
_agora_pg_provision() {
    if [[ $(_agora_pg_psql -d postgres -Atc 'SELECT pg_is_in_recovery()') == t ]]; then
        return 0
    fi
    _agora_pg_psql -d postgres <<'SQL' || return 1
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agora') THEN
        CREATE ROLE agora LOGIN CREATEDB PASSWORD 'agora';
    ELSE
        ALTER ROLE agora LOGIN CREATEDB PASSWORD 'agora';
    END IF;
END
$$;
SELECT format('CREATE DATABASE %I OWNER agora', d)
FROM unnest(ARRAY['agora', 'agora_test']) AS d
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d)
\gexec
SQL
    local db
    for db in agora agora_test; do
        _agora_pg_psql -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' || return 1
    done
}

agora_start_postgres() {
    agora_load_env || return 1
    # $stop: how a failed call stops a server it launched itself (: if none).
    local dir data sock log pid owner listen port stop=:
    dir=$(_agora_pg_dir)
    data=$dir/data
    sock=$(_agora_pg_socket_dir)
    log=$dir/postgres.log
    owner=$(id -un)
    ((EUID == 0)) && owner=postgres

    if [[ ! -x $AGORA_PG_BINDIR/postgres ]]; then
        agora_log "error: PostgreSQL binaries not found in $AGORA_PG_BINDIR (run agora_install_system_packages or set AGORA_PG_BINDIR)"
        return 1
    fi

    if pid=$(_agora_live_pid "$data/postmaster.pid" postgres); then
        # postmaster.pid line 4 is the port, line 6 the listen address.
        port=$(sed -n 4p "$data/postmaster.pid")
        listen=$(sed -n 6p "$data/postmaster.pid")
        _agora_check_signature postgres "$dir" "host=$listen port=$port" \
            "host=$AGORA_HOST port=$AGORA_POSTGRES_PORT" || return 1
        if _agora_pg_ready; then
            agora_log "postgres already running (pid $pid)"
            return 0
        fi
        # Ours but not accepting yet (starting or recovering): wait below.
    else
        _agora_require_free_port postgres "$AGORA_POSTGRES_PORT" AGORA_POSTGRES_PORT || return 1
        mkdir -p -- "$dir" "$sock" || return 1
        if ((EUID == 0)); then
            # .run is usually root's; the cluster must belong to postgres.
            chown "$owner:" "$dir" "$sock" || return 1
        fi
        chmod 700 "$dir" "$sock" || return 1
        if ! _agora_pg_as test -w "$dir"; then
            agora_log "error: OS user $owner cannot write $dir; every parent directory must be world-searchable (chmod o+x) or set AGORA_RUN_DIR elsewhere"
            return 1
        fi

        if [[ ! -f $data/PG_VERSION ]]; then
            agora_log "initialising postgres cluster in $data"
            # C.UTF-8 ships with glibc, so no locale package is needed and
            # sorting is identical on every machine.
            if ! (cd -- "$dir" && _agora_pg_as "$AGORA_PG_BINDIR/initdb" -D "$data" -U postgres \
                --auth-local=trust --auth-host=scram-sha-256 \
                --encoding=UTF8 --locale=C.UTF-8) >"$dir/initdb.log" 2>&1; then
                agora_log "error: initdb failed"
                _agora_tail_logs "$dir/initdb.log"
                return 1
            fi
        elif [[ $(cat -- "$data/PG_VERSION") != "$("$AGORA_PG_BINDIR/postgres" -V | sed -E 's/.* ([0-9]+).*/\1/')" ]]; then
            agora_log "error: $data was created by PostgreSQL $(cat -- "$data/PG_VERSION"), not the one in $AGORA_PG_BINDIR; remove it or set AGORA_PG_BINDIR"
            return 1
        fi
        _agora_pg_write_config "$data" "$sock" "$owner" || return 1

        agora_log "starting postgres on $AGORA_HOST:$AGORA_POSTGRES_PORT"
        stop=_agora_stop_postgres
        # pg_ctl detaches the server (own session, output to -l) itself.
        if ! (cd -- "$dir" && _agora_pg_as "$AGORA_PG_BINDIR/pg_ctl" -D "$data" -l "$log" \
            -w -t "$AGORA_START_TIMEOUT" start) >/dev/null 2>&1; then
            agora_log "error: postgres failed to start (or took over ${AGORA_START_TIMEOUT}s)"
            _agora_tail_logs "$log"
            _agora_stop_postgres
            return 1
        fi
    fi

    # From here on, a server we launched is stopped again on failure: the
    # next call would otherwise see it running and skip provisioning.

    _agora_wait_healthy postgres "$AGORA_START_TIMEOUT" _agora_pg_ready \
        "postgres not accepting connections on $AGORA_HOST:$AGORA_POSTGRES_PORT within ${AGORA_START_TIMEOUT}s" \
        --every 0.5 --stop "$stop" -- "$log" || return 1
    if ! _agora_pg_provision; then
        agora_log "error: could not create role/databases"
        _agora_tail_logs "$log"
        "$stop"
        return 1
    fi
    agora_log "postgres ready: $AGORA_DATABASE_URL (+ database agora_test)"
}

_agora_stop_postgres() {
    local dir data pid
    dir=$(_agora_pg_dir)
    data=$dir/data
    pid=$(_agora_live_pid "$data/postmaster.pid" postgres) || return 0
    agora_log "stopping postgres (pid $pid)"
    (cd -- "$dir" && _agora_pg_as "$AGORA_PG_BINDIR/pg_ctl" -D "$data" -m fast -w -t 30 stop) \
        >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    _agora_wait_pid_gone "$pid" 30
}

# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------

_agora_redis_dir() { printf '%s\n' "$AGORA_RUN_DIR/redis"; }

_agora_redis_ping() {
    [[ $(timeout 3 redis-cli -h "$AGORA_HOST" -p "$AGORA_REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

agora_start_redis() {
    agora_load_env || return 1
    # $stop: how a failed call stops a server it launched itself (: if none).
    local dir pid sig stop=:
    dir=$(_agora_redis_dir)
    sig="host=$AGORA_HOST port=$AGORA_REDIS_PORT"
    local log=$dir/redis.log pidfile=$dir/redis.pid

    if pid=$(_agora_live_pid "$pidfile" redis-server); then
        _agora_check_signature redis "$dir" "$(_agora_read_signature "$dir")" "$sig" || return 1
        if _agora_redis_ping; then
            agora_log "redis already running (pid $pid)"
            return 0
        fi
        # Ours but not answering PONG yet (e.g. loading the AOF): wait below.
    else
        rm -f -- "$pidfile"
        _agora_require_free_port redis "$AGORA_REDIS_PORT" AGORA_REDIS_PORT || return 1
        mkdir -p -- "$dir/data" || return 1
        printf '%s\n' "$sig" >"$dir/instance"
        agora_log "starting redis on $AGORA_HOST:$AGORA_REDIS_PORT"
        stop=_agora_stop_redis
        # No config file on purpose: /etc/redis/redis.conf is the system
        # instance's. Errors before it daemonises go to stderr, so append
        # those to the same log it writes afterwards.
        # shellcheck disable=SC2094
        if ! (cd -- "$dir" && redis-server \
            --bind "$AGORA_HOST" --port "$AGORA_REDIS_PORT" --protected-mode yes \
            --dir "$dir/data" --appendonly yes \
            --daemonize yes --pidfile "$pidfile" --logfile "$log") \
            </dev/null >>"$log" 2>&1; then
            agora_log "error: redis-server failed to start"
            _agora_tail_logs "$log"
            return 1
        fi
    fi

    # Daemonised redis can still die after forking (e.g. bind fails);
    # allow a moment for it to write its pid file before judging.
    _agora_wait_healthy redis "$AGORA_START_TIMEOUT" _agora_redis_ping \
        "redis did not answer PING within ${AGORA_START_TIMEOUT}s" \
        --pidfile "$pidfile" redis-server --grace 2 --stop "$stop" -- "$log" || return 1
    agora_log "redis ready: $AGORA_REDIS_URL"
}

_agora_stop_redis() {
    local dir pid
    dir=$(_agora_redis_dir)
    pid=$(_agora_live_pid "$dir/redis.pid" redis-server) || return 0
    agora_log "stopping redis (pid $pid)"
    # SHUTDOWN flushes the AOF; fall back to SIGTERM (same effect) if it is
    # unreachable. Host and port as it was started, not as now configured.
    local host port
    host=$(sed -nE 's/.*host=([^ ]+).*/\1/p' "$dir/instance" 2>/dev/null)
    port=$(sed -nE 's/.*port=([0-9]+).*/\1/p' "$dir/instance" 2>/dev/null)
    timeout 10 redis-cli -h "${host:-$AGORA_HOST}" -p "${port:-$AGORA_REDIS_PORT}" shutdown >/dev/null 2>&1 ||
        kill -TERM "$pid" 2>/dev/null || true
    _agora_wait_pid_gone "$pid" 30
    rm -f -- "$dir/redis.pid"
}

# --------------------------------------------------------------------------
# SMTP sink (sandboxes/smtp_sink.py)
# --------------------------------------------------------------------------

_agora_smtp_dir() { printf '%s\n' "$AGORA_RUN_DIR/smtp"; }

_agora_smtp_healthy() {
    _agora_port_open "$AGORA_SMTP_HOST" "$AGORA_SMTP_PORT" &&
        [[ $(_agora_http_status "$AGORA_SMTP_HOST" "$AGORA_SMTP_HTTP_PORT" /messages) == 200 ]]
}

agora_start_smtp_sink() {
    agora_load_env || return 1
    # $stop: how a failed call stops a server it launched itself (: if none).
    local dir pid sig stop=:
    dir=$(_agora_smtp_dir)
    sig="host=$AGORA_SMTP_HOST smtp=$AGORA_SMTP_PORT http=$AGORA_SMTP_HTTP_PORT"
    local log=$dir/smtp_sink.log pidfile=$dir/smtp_sink.pid

    if pid=$(_agora_live_pid "$pidfile" smtp_sink); then
        _agora_check_signature smtp-sink "$dir" "$(_agora_read_signature "$dir")" "$sig" || return 1
        if _agora_smtp_healthy; then
            agora_log "smtp sink already running (pid $pid)"
            return 0
        fi
    else
        if [[ ! -x $AGORA_PYTHON ]]; then
            agora_log "error: $AGORA_PYTHON not found; create the venv first (or set AGORA_PYTHON)"
            return 1
        fi
        _agora_require_free_port "smtp sink" "$AGORA_SMTP_PORT" AGORA_SMTP_PORT "$AGORA_SMTP_HOST" || return 1
        _agora_require_free_port "smtp sink" "$AGORA_SMTP_HTTP_PORT" AGORA_SMTP_HTTP_PORT "$AGORA_SMTP_HOST" || return 1
        mkdir -p -- "$dir" || return 1
        printf '%s\n' "$sig" >"$dir/instance"
        agora_log "starting smtp sink on $AGORA_SMTP_HOST:$AGORA_SMTP_PORT (http $AGORA_SMTP_HTTP_PORT)"
        pid=$(_agora_spawn_module sandboxes.smtp_sink "$log") || return 1
        printf '%s\n' "$pid" >"$pidfile"
        stop=_agora_stop_smtp_sink
    fi

    _agora_wait_healthy "smtp sink" "$AGORA_START_TIMEOUT" _agora_smtp_healthy \
        "smtp sink did not answer GET /messages within ${AGORA_START_TIMEOUT}s" \
        --pid "$pid" --stop "$stop" -- "$log" || return 1
    agora_log "smtp sink ready: smtp://$AGORA_SMTP_HOST:$AGORA_SMTP_PORT, inbox http://$AGORA_SMTP_HOST:$AGORA_SMTP_HTTP_PORT/messages"
}

_agora_stop_smtp_sink() {
    _agora_stop_module "smtp sink" "$(_agora_smtp_dir)/smtp_sink.pid" sandboxes.smtp_sink
}

# Runs `python -m MODULE` detached, from the repo root with it on PYTHONPATH (`agora`
# is not an installed package); prints its pid. setsid/nohup: survive the terminal;
# the inner `&` has no job control, so $! is python's own pid.
_agora_spawn_module() {
    local module=$1 log=$2
    (
        cd -- "$AGORA_ROOT" || exit 1
        PYTHONPATH=$AGORA_ROOT${PYTHONPATH:+:$PYTHONPATH} \
            setsid nohup "$AGORA_PYTHON" -m "$module" </dev/null >>"$log" 2>&1 &
        echo $!
    )
}

# Stops the process in PIDFILE if it is still MODULE (a recycled pid is left alone).
_agora_stop_module() {
    local label=$1 pidfile=$2 module=$3 pid
    # The module's own name: a process started before issue 15 ran it as agora.<name>.
    pid=$(_agora_live_pid "$pidfile" "${module##*.}") || {
        rm -f -- "$pidfile"
        return 0
    }
    agora_log "stopping $label (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    _agora_wait_pid_gone "$pid" 10
    rm -f -- "$pidfile"
}

# --------------------------------------------------------------------------
# Sandbox providers: payments (sandboxes/payment_sandbox.py), SMS (sandboxes/sms_sandbox.py)
# --------------------------------------------------------------------------

# _agora_start_sandbox LABEL MODULE NAME PORT_VARIABLE SIGNATURE READY_MESSAGE
# Start the sandbox provider MODULE (an HTTP server with GET /healthz) on the port in
# PORT_VARIABLE, with its state, log and pid under $AGORA_RUN_DIR/NAME; reuse one
# already running with the same SIGNATURE (what it was started with). The sandbox_*
# locals are read by _agora_sandbox_healthy and _agora_stop_sandbox, which run inside.
_agora_start_sandbox() {
    local sandbox_label=$1 sandbox_module=$2 name=$3 port_variable=$4 sig=$5 ready=$6
    local sandbox_port=${!port_variable} dir=$AGORA_RUN_DIR/$3 pid stop=:
    local log=$dir/$name.log sandbox_pidfile=$dir/$name.pid

    if pid=$(_agora_live_pid "$sandbox_pidfile" "${sandbox_module##*.}"); then
        _agora_check_signature "$sandbox_label" "$dir" "$(_agora_read_signature "$dir")" "$sig" || return 1
        if _agora_sandbox_healthy; then
            agora_log "$sandbox_label already running (pid $pid)"
            return 0
        fi
    else
        if [[ ! -x $AGORA_PYTHON ]]; then
            agora_log "error: $AGORA_PYTHON not found; create the venv first (or set AGORA_PYTHON)"
            return 1
        fi
        _agora_require_free_port "$sandbox_label" "$sandbox_port" "$port_variable" || return 1
        mkdir -p -- "$dir" || return 1
        printf '%s\n' "$sig" >"$dir/instance"
        agora_log "starting $sandbox_label on $AGORA_HOST:$sandbox_port"
        pid=$(_agora_spawn_module "$sandbox_module" "$log") || return 1
        printf '%s\n' "$pid" >"$sandbox_pidfile"
        stop=_agora_stop_sandbox
    fi

    _agora_wait_healthy "$sandbox_label" "$AGORA_START_TIMEOUT" _agora_sandbox_healthy \
        "$sandbox_label did not answer GET /healthz within ${AGORA_START_TIMEOUT}s" \
        --pid "$pid" --stop "$stop" -- "$log" || return 1
    agora_log "$sandbox_label ready: $ready"
}

_agora_sandbox_healthy() {
    [[ $(_agora_http_status "$AGORA_HOST" "$sandbox_port" /healthz) == 200 ]]
}

_agora_stop_sandbox() {
    _agora_stop_module "$sandbox_label" "$sandbox_pidfile" "$sandbox_module"
}

agora_start_payment_sandbox() {
    agora_load_env || return 1
    if [[ -z ${AGORA_STRIPE_SECRET_KEY:-} || -z ${AGORA_STRIPE_WEBHOOK_SECRET:-} ]]; then
        agora_log "error: cannot start payment sandbox: AGORA_STRIPE_SECRET_KEY and AGORA_STRIPE_WEBHOOK_SECRET are not set (scripts/up writes them to .run/agora.env)"
        return 1
    fi
    _agora_start_sandbox "payment sandbox" sandboxes.payment_sandbox payment_sandbox AGORA_PAYMENT_SANDBOX_PORT \
        "host=$AGORA_HOST http=$AGORA_PAYMENT_SANDBOX_PORT" \
        "$AGORA_PAYMENT_API_URL (ledger: $AGORA_PAYMENT_API_URL/v1/ledger)"
}

# Accepts the credentials in AGORA_TWILIO_ACCOUNT_SID / AGORA_TWILIO_AUTH_TOKEN, which
# agora_write_env_file (scripts/lib/app.sh) generates; the workers send with the same.
agora_start_sms_sandbox() {
    agora_load_env || return 1
    if [[ -z ${AGORA_TWILIO_ACCOUNT_SID:-} || -z ${AGORA_TWILIO_AUTH_TOKEN:-} ]]; then
        agora_log "error: cannot start sms sandbox: AGORA_TWILIO_ACCOUNT_SID and AGORA_TWILIO_AUTH_TOKEN are not set (scripts/up writes them to .run/agora.env)"
        return 1
    fi
    _agora_start_sandbox "sms sandbox" sandboxes.sms_sandbox sms_sandbox AGORA_SMS_SANDBOX_PORT \
        "host=$AGORA_HOST http=$AGORA_SMS_SANDBOX_PORT account=$AGORA_TWILIO_ACCOUNT_SID" \
        "$AGORA_TWILIO_API_URL (inbox: $AGORA_TWILIO_API_URL/sandbox/messages)"
}

_agora_stop_payment_sandbox() {
    _agora_stop_module "payment sandbox" "$AGORA_RUN_DIR/payment_sandbox/payment_sandbox.pid" sandboxes.payment_sandbox
}

_agora_stop_sms_sandbox() {
    _agora_stop_module "sms sandbox" "$AGORA_RUN_DIR/sms_sandbox/sms_sandbox.pid" sandboxes.sms_sandbox
}

# --------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------

# Stops them all; each step is a no-op when that service is not running.
# Keeps going past a failure so one stuck service cannot strand the others.
agora_stop_all() {
    agora_load_env || return 1
    local rc=0
    _agora_stop_sms_sandbox || rc=1
    _agora_stop_payment_sandbox || rc=1
    _agora_stop_smtp_sink || rc=1
    _agora_stop_redis || rc=1
    _agora_stop_postgres || rc=1
    _agora_stop_rabbitmq || rc=1
    return "$rc"
}
