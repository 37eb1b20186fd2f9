#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, everything in one folder: for the integration test and for
# trying `layersplit slurm` without a cluster. Needs Debian's slurmctld, slurmd, munge and slurm-client
# (`make setup` installs them) and root (SlurmUser=root). No systemd: the daemons are started by hand and
# stopped by the pids they wrote.
#
#   scripts/slurm-local.sh start DIR    start munged, slurmctld and slurmd with state, spool, sockets, pid and
#                                       log files under DIR; wait until the node is idle; print the variable
#                                       clients need (also written to DIR/env: `. DIR/env`)
#   scripts/slurm-local.sh stop DIR     cancel this cluster's jobs, stop its daemons by pid, wait for them
#   scripts/slurm-local.sh status DIR   sinfo of this cluster
#
# Ports: SLURM_LOCAL_PORT (slurmctld; slurmd uses the next one) or the first free pair from a random base in
# 20000-29999, so that several clusters (and a system Slurm on 6817/6818) never collide.
# Exit status: 0 started (or stopped), 1 when Slurm cannot start here (the reason and the daemons' log tails are
# printed); tests treat that as a failure, never as a skip.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
D=$(cd "$2" && pwd)

log_tails() {
    for f in "$D/daemons.out" "$D/munged.log" "$D/slurmctld.log" "$D/slurmd.log"; do
        [ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }
    done
    return 0
}

# Sends TERM to the pids in the given pid files (all at once: each daemon takes about 2 s to exit), waits up
# to 10 s, then KILLs those still there. Only those pids: never by name.
stop_pids() {
    local file pid pids=()
    for file in "$@"; do
        [ -s "$file" ] || continue
        pid=$(cat "$file")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for _ in $(seq 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
    rm -f "$@"
    return 0
}

# Closes every file descriptor this script inherited beyond 0-2 (and bash's own 255), so that the daemons do
# not hold them open for ever: a caller that reads this script's output to EOF, or one whose own descriptors
# leaked into it (Swift's Foundation.Process then never saw this script exit), would wait as long as the
# cluster runs.
close_inherited_fds() {
    local fd
    for fd in $(ls /proc/$$/fd); do
        case $fd in 0|1|2|255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
    done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
    for tool in munged mungekey slurmctld slurmd sinfo sbatch; do
        command -v "$tool" >/dev/null || {
            echo "slurm-local: $tool is not installed; install slurmctld slurmd munge slurm-client (make setup does)" >&2
            exit 1
        }
    done
    [ "$(id -u)" = 0 ] || { echo "slurm-local: needs root (the cluster runs with SlurmUser=root)" >&2; exit 1; }
    close_inherited_fds
    if [ -s "$D/slurmctld.pid" ] && kill -0 "$(cat "$D/slurmctld.pid")" 2>/dev/null; then
        echo "slurm-local: a cluster already runs from $D (slurmctld pid $(cat "$D/slurmctld.pid")); stop it first" >&2
        exit 1
    fi
    mkdir -p "$D/munge" "$D/state" "$D/spool"
    chmod 755 "$D" "$D/munge"          # munged refuses a socket folder others can write to
    local up=$D
    while [ "$up" != / ]; do           # ... and one that not everyone can reach
        up=$(dirname "$up")
        [ "$(( 0$(stat -c %a "$up") & 1 ))" = 1 ] || {
            echo "slurm-local: munged needs every folder above its socket to be executable by all, and $up is mode $(stat -c %a "$up"); use a folder such as /tmp/NAME made with mode 755" >&2
            exit 1
        }
    done

    local port=${SLURM_LOCAL_PORT:-}
    if [ -z "$port" ]; then
        port=$((20000 + (RANDOM % 5000) * 2))
        while ! port_free "$port" || ! port_free $((port + 1)); do port=$((port + 2)); done
    fi

    # munge: one key, one socket, all in DIR.
    rm -f "$D/munge/munge.key"
    mungekey --create --keyfile="$D/munge/munge.key" >/dev/null
    chmod 600 "$D/munge/munge.key"
    # The daemons get no terminal and no inherited pipes (a caller reading this script's output until EOF
    # would wait for them); what they print before their logs open goes to DIR/daemons.out.
    : > "$D/daemons.out"
    munged --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket.2" --pid-file="$D/munged.pid" \
        --log-file="$D/munged.log" --seed-file="$D/munge/munged.seed" </dev/null >>"$D/daemons.out" 2>&1 \
        || { echo "slurm-local: munged did not start" >&2; log_tails; exit 1; }

    local node host
    host=$(hostname -s)
    node=$(slurmd -C | head -n 1)
    cat > "$D/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster for tests.
ClusterName=layersplit-local
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket.2
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Start batch jobs as soon as they can run (the default batch_sched_delay waits up to 3 s between passes).
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=60
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
$node State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    echo "export SLURM_CONF=$D/slurm.conf" > "$D/env"
    export SLURM_CONF=$D/slurm.conf

    slurmctld -c -f "$D/slurm.conf" </dev/null >>"$D/daemons.out" 2>&1 \
        || { echo "slurm-local: slurmctld did not start" >&2; log_tails; stop; exit 1; }
    slurmd -f "$D/slurm.conf" </dev/null >>"$D/daemons.out" 2>&1 \
        || { echo "slurm-local: slurmd did not start" >&2; log_tails; stop; exit 1; }

    local state=""
    for _ in $(seq 300); do
        state=$(sinfo -h -o %t 2>/dev/null | head -n 1 || true)
        [ "$state" = idle ] && break
        sleep 0.1
    done
    if [ "$state" != idle ]; then
        echo "slurm-local: the node did not become idle within 30 s (sinfo says '${state:-nothing}')" >&2
        log_tails
        stop
        exit 1
    fi
    echo "export SLURM_CONF=$D/slurm.conf"
}

stop() {
    if [ -s "$D/slurm.conf" ] && [ -s "$D/slurmctld.pid" ] && kill -0 "$(cat "$D/slurmctld.pid")" 2>/dev/null; then
        # Cancel this cluster's jobs first, so that slurmd ends their processes before it stops.
        export SLURM_CONF="$D/slurm.conf"
        scancel --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -z "$(squeue -h -o %i 2>/dev/null || true)" ] && break
            sleep 0.1
        done
    fi
    stop_pids "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munged.pid"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF="$D/slurm.conf" sinfo ;;
    *) usage ;;
esac
