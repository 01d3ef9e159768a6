#!/usr/bin/env bash
# Stop the local cluster started by slurm/start.sh, by the PIDs it recorded, and nothing else.
#
# Order: job processes first (the tasks under this cluster's slurmstepd, found through
# SLURM_CONF=<our conf> in their environment: an orphaned slurmstepd keeps its tasks alive),
# then slurmd, slurmctld, slurmdbd, mariadbd, munged. Each gets SIGTERM, then SIGKILL after
# $SLURM_LOCAL_STOP_WAIT seconds (default 10). A zombie counts as gone.
#   slurm/stop.sh           stop, keep the logs under $SLURM_LOCAL_ROOT
#   slurm/stop.sh --purge   stop and delete $SLURM_LOCAL_ROOT
set -uo pipefail

ROOT=${SLURM_LOCAL_ROOT:-/tmp/facelib-slurm}
WAIT=${SLURM_LOCAL_STOP_WAIT:-10}
PURGE=0
[ "${1:-}" = --purge ] && PURGE=1
PIDS=$ROOT/run/pids
CONF=$ROOT/etc/slurm.conf

alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }

# The recorded PID must still be the daemon we started (not a recycled PID): its environment or
# command line names our state directory.
ours() {
  local pid=$1
  alive "$pid" || return 1
  tr '\0' '\n' 2>/dev/null < "/proc/$pid/cmdline" | grep -qF "$ROOT" && return 0
  tr '\0' '\n' 2>/dev/null < "/proc/$pid/environ" | grep -qxF "SLURM_CONF=$CONF"
}

stop_pids() {  # pids...: TERM, wait, KILL
  local pids=("$@") p deadline
  [ ${#pids[@]} -eq 0 ] && return 0
  kill -TERM "${pids[@]}" 2>/dev/null
  deadline=$(( $(date +%s) + WAIT ))
  while :; do
    local left=()
    for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      kill -KILL "${left[@]}" 2>/dev/null
      return 0
    fi
    sleep 0.1
  done
}

children() {  # pid: its direct children, read from /proc (procps may be missing)
  local f
  for f in /proc/[0-9]*/stat; do
    sed 's/^\([0-9]*\) .*) [A-Za-z] \([0-9]*\) .*/\1 \2/' "$f" 2>/dev/null
  done | awk -v p="$1" '$2 == p { print $1 }'
}
descendants() {  # pid: every descendant, parents before children
  local k
  for k in $(children "$1"); do echo "$k"; descendants "$k"; done
}

if [ -s "$PIDS" ]; then
  # 1. tasks of running jobs: descendants of this cluster's slurmstepd processes.
  steps=()
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$(cat "$d/comm" 2>/dev/null)" = slurmstepd ] || continue
    tr '\0' '\n' 2>/dev/null < "$d/environ" | grep -qxF "SLURM_CONF=$CONF" && steps+=("$p")
  done
  tasks=()
  for s in "${steps[@]}"; do
    for k in $(descendants "$s"); do alive "$k" && tasks+=("$k"); done
  done
  stop_pids "${tasks[@]}" "${steps[@]}"
  # 2. daemons, in reverse dependency order.
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    # slurmd_<node> for each node; the other daemons by their own name.
    for pid in $(awk -v n="$name" '$1 == n || index($1, n "_") == 1 { print $2 }' "$PIDS"); do
      if ours "$pid"; then stop_pids "$pid"; fi
    done
  done
  : > "$PIDS"
  echo "slurm/stop.sh: stopped the cluster under $ROOT" >&2
fi
if [ "$PURGE" = 1 ]; then rm -rf "$ROOT"; fi
exit 0
