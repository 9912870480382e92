#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for the SLURM tests (tests/test_slurm.py) and for trying
# `snakemake --profile workflow/profiles/slurm` on a laptop. Needs root and Debian's apt.
#
#   .ci/slurm-cluster.sh start    install slurm-wlm + munge if missing, write the config, start
#                                 munged, slurmctld and slurmd; returns at once when already up
#   .ci/slurm-cluster.sh stop     cancel all jobs, stop the daemons this script started, remove
#                                 /etc/slurm/slurm.conf again
#   .ci/slurm-cluster.sh status   exit 0 when the controller answers and the node takes jobs
#
# Why /etc/slurm/slurm.conf is removed on stop: the SLURM executor plugin of Snakemake runs
# `scontrol show config` whenever snakemake starts; with a config file but no controller that
# call times out after ~9 s, for every snakemake process on the machine. So the config lives in
# $MML_SLURM_DIR and /etc/slurm/slurm.conf is only a link to it while the cluster runs.
#
# The cluster: node "localhost" with every CPU and 90% of the memory, one fake GPU (GRES
# gpu:1 backed by /dev/null, so jobs that ask for --gpus=1 are scheduled and get
# CUDA_VISIBLE_DEVICES=0), partition "debug" (default). No accounting database: Snakemake must
# query job states with squeue (`slurm-status-command: squeue`), which sees finished jobs for
# MinJobAge=300 s.
set -euo pipefail

STATE_DIR=${MML_SLURM_DIR:-/var/lib/mml-slurm}
CONF=/etc/slurm/slurm.conf
# slurmd reads gres.conf from the folder of slurm.conf (as named, not where the link points)
GRES=/etc/slurm/gres.conf
PARTITION=debug

log() { echo "slurm-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# true when the file $1 is this script's link to the file of that name in $STATE_DIR
is_ours() { [[ -L $1 && $(readlink "$1") == "$STATE_DIR/${1##*/}" ]]; }

controller_up() {
    is_ours "$CONF" || return 1
    timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"
}

node_state() { timeout 5 sinfo -h -n localhost -o %t 2>/dev/null || true; }

is_up() { controller_up && [[ $(node_state) =~ ^(idle|mix|alloc) ]]; }

# stop daemon $2 whose pid file is $1 (TERM, then KILL after 10 s); a stale pid file of a
# crashed daemon may name another process by now, so the process name must match
stop_pid() {
    local pidfile=$1 name=$2 pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get: install SLURM yourself."
    log "installing slurm-wlm and munge with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }
}

start_munge() {
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        su -s /bin/sh munge -c /usr/sbin/munged
        touch "$STATE_DIR/munged.ours"
    fi
}

write_config() {
    local cpus mem_mb
    cpus=$(nproc)
    # RealMemory above what the node has would drain it; 1000 MB is Snakemake's default mem_mb
    mem_mb=$(awk '/^MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    ((mem_mb >= 1000)) || die "the node needs at least 1100 MB of memory for Snakemake's default jobs (has ${mem_mb} MB usable)."
    mkdir -p "$STATE_DIR/ctld" "$STATE_DIR/spool" "$STATE_DIR/log"
    cat >"$STATE_DIR/slurm.conf" <<EOF
# written by .ci/slurm-cluster.sh: a one-node test cluster on localhost
ClusterName=mml
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
# no systemd or cgroup setup needed: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# no accounting database: job states come from slurmctld (squeue), kept 300 s after a job ends
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
# scancel and time limits send SIGTERM, then SIGKILL after KillWait seconds (30 by default; real
# clusters often more): time for a training step to save a checkpoint; short here for fast tests
KillWait=5
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    # the fake GPU: SLURM only needs a device file to hand out
    echo "NodeName=localhost Name=gpu File=/dev/null" >"$STATE_DIR/gres.conf"
}

start() {
    [[ $EUID -eq 0 ]] || die "starting the cluster needs root (apt-get, daemons): sudo $0 start"
    if is_up; then
        log "running (node localhost: $(node_state))."
        return
    fi
    local t0=$SECONDS
    install_packages
    mkdir -p /etc/slurm "$STATE_DIR"
    for file in "$CONF" "$GRES"; do
        if [[ -e $file || -L $file ]] && ! is_ours "$file"; then
            die "$file exists and was not written by this script: this machine has a SLURM setup of its own; use that one."
        fi
    done
    start_munge
    write_config
    ln -sfn "$STATE_DIR/slurm.conf" "$CONF"
    ln -sfn "$STATE_DIR/gres.conf" "$GRES"
    # restart from a clean state: leftovers of a crashed run would keep old jobs queued
    stop_pid "$STATE_DIR/slurmd.pid" slurmd
    stop_pid "$STATE_DIR/slurmctld.pid" slurmctld
    slurmctld -c -i
    slurmd -N localhost
    for _ in $(seq 150); do
        case $(node_state) in
            idle* | mix* | alloc*) log "started in $((SECONDS - t0)) s (node localhost: $(node_state), partition $PARTITION)."; return ;;
            down* | drain* | inval*) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    log "node localhost did not become idle within 30 s; state: $(node_state). Logs: $STATE_DIR/log/"
    tail -n 20 "$STATE_DIR/log/slurmctld.log" "$STATE_DIR/log/slurmd.log" >&2 || true
    stop
    exit 1
}

stop() {
    if controller_up; then
        scancel --full --user="$(id -un)" 2>/dev/null || true
        squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
    fi
    stop_pid "$STATE_DIR/slurmd.pid" slurmd
    stop_pid "$STATE_DIR/slurmctld.pid" slurmctld
    if [[ -f $STATE_DIR/munged.ours ]]; then
        stop_pid /run/munge/munged.pid munged
        rm -f "$STATE_DIR/munged.ours"
    fi
    for file in "$CONF" "$GRES"; do
        if is_ours "$file"; then rm -f "$file"; fi
    done
    log "stopped."
}

status() {
    if is_up; then
        log "running (node localhost: $(node_state), partition $PARTITION)."
    else
        log "not running."
        return 1
    fi
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
