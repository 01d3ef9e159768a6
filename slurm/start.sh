#!/usr/bin/env bash
# Start a single-node SLURM cluster on 127.0.0.1 for the tests and CI (root, Debian 12, no systemd).
#
# Daemons: munged, mariadbd + slurmdbd (so that `sacct` works: submitit needs it to see a job
# that ended without a result, e.g. a cancelled one), slurmctld and slurmd. All of their state
# lives under $SLURM_LOCAL_ROOT (default /tmp/facelib-slurm; kept short because unix socket paths
# are limited to 108 characters), they listen on private ports and sockets only, and their PIDs
# are written to $SLURM_LOCAL_ROOT/run/pids so that slurm/stop.sh ends exactly what was started.
#
# Usage:  slurm/start.sh            then   export SLURM_CONF=$SLURM_LOCAL_ROOT/etc/slurm.conf
# Environment:
#   SLURM_LOCAL_ROOT        state directory (default /tmp/facelib-slurm); wiped when not running
#   SLURM_LOCAL_PORT        first of 4 + NODES consecutive ports: slurmctld, slurmd, mariadb,
#                           slurmdbd, then one per emulated node when NODES > 1 (default 16817)
#   SLURM_LOCAL_NODES       nodes (default 1: the node is `hostname -s`; N > 1: node1..nodeN, one
#                           slurmd each on this machine, to test multi-node rank wiring)
#   SLURM_LOCAL_CPUS        CPUs the node advertises (default: max(nproc, 8)); tiny test jobs
#                           oversubscribe the real cores
#   SLURM_LOCAL_GPUS        fake GPUs (symlinks to /dev/null) the node advertises (default 4)
#   SLURM_LOCAL_ACCOUNTING  1 (default) starts mariadb + slurmdbd; 0 skips them (no sacct)
#   SLURM_LOCAL_TIMEOUT     seconds to wait for each daemon (default 60)
# Measured timings and the reasons behind these settings: slurm/README.md.
set -euo pipefail

ROOT=${SLURM_LOCAL_ROOT:-/tmp/facelib-slurm}
PORT=${SLURM_LOCAL_PORT:-16817}
NCPU=$(nproc)
CPUS=${SLURM_LOCAL_CPUS:-$(( NCPU > 8 ? NCPU : 8 ))}
GPUS=${SLURM_LOCAL_GPUS:-4}
NODES=${SLURM_LOCAL_NODES:-1}
ACCOUNTING=${SLURM_LOCAL_ACCOUNTING:-1}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
CTLD_PORT=$PORT; SLURMD_PORT=$((PORT + 1)); DB_PORT=$((PORT + 2)); DBD_PORT=$((PORT + 3))
HERE=$(cd "$(dirname "$0")" && pwd)
T0=$(date +%s.%N)

die() { echo "slurm/start.sh: $*" >&2; exit 1; }
log() { echo "slurm/start.sh: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (the daemons run as root without systemd)"
case "$ROOT" in /*) ;; *) die "SLURM_LOCAL_ROOT must be an absolute path, got '$ROOT'";; esac
# munge.socket.2 and the mariadb socket live under $ROOT: unix socket paths are limited to 108 chars.
[ ${#ROOT} -le 80 ] || die "SLURM_LOCAL_ROOT '$ROOT' is too long (${#ROOT} > 80 characters): unix sockets under it would exceed 108 characters"
for b in munged slurmctld slurmd scontrol sinfo; do command -v "$b" >/dev/null || die "$b not found: run slurm/install.sh first"; done
if [ "$ACCOUNTING" = 1 ]; then
  for b in mariadbd mariadb-install-db mariadb slurmdbd sacct; do command -v "$b" >/dev/null || die "$b not found: run slurm/install.sh first"; done
fi

export SLURM_CONF=$ROOT/etc/slurm.conf

# A zombie answers kill -0 until its parent reaps it: alive means present and not in state Z.
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }

# Already running (every recorded daemon alive and the controller answering)? Then reuse it.
if [ -s "$ROOT/run/pids" ]; then
  all=1
  while read -r name pid; do alive "$pid" || all=0; done < "$ROOT/run/pids"
  if [ "$all" = 1 ] && scontrol ping >/dev/null 2>&1; then
    log "already running under $ROOT (SLURM_CONF=$SLURM_CONF)"
    exit 0
  fi
  log "stale state under $ROOT: stopping what is left of it"
  "$HERE/stop.sh" --purge
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
case "$NODES" in ''|*[!0-9]*|0) die "SLURM_LOCAL_NODES must be a positive integer, got '$NODES'";; esac
ports=("$CTLD_PORT" "$SLURMD_PORT")
if [ "$NODES" -gt 1 ]; then
  for i in $(seq 1 "$NODES"); do ports+=($((PORT + 3 + i))); done
fi
[ "$ACCOUNTING" = 1 ] && ports+=("$DB_PORT" "$DBD_PORT")
for p in "${ports[@]}"; do
  if port_busy "$p"; then die "port $p on 127.0.0.1 is already in use (another cluster?); set SLURM_LOCAL_PORT"; fi
done

rm -rf "$ROOT"
mkdir -p "$ROOT"/{etc,run,log,spool/ctld,munge,fakedev}
chmod 755 "$ROOT" "$ROOT/munge"   # munged insists: socket dir executable by all, not writable by others
: > "$ROOT/run/pids"

# Started daemons run in their own session (setsid) so that the caller's Ctrl-C or exit does not
# reach them; stop.sh ends them by the PIDs recorded here.
start_daemon() {  # name logfile cmd...
  local name=$1 logf=$2; shift 2
  setsid "$@" >>"$logf" 2>&1 < /dev/null &
  echo "$name $!" >> "$ROOT/run/pids"
  eval "PID_$name=$!"
}
fail() {
  echo "slurm/start.sh: $*" >&2
  for f in "$ROOT"/log/*.log; do echo "--- tail $f" >&2; tail -n 15 "$f" >&2 || true; done
  "$HERE/stop.sh" >&2 || true
  exit 1
}
wait_for() {  # description daemon-name cmd...: poll cmd until it succeeds, while the daemon lives
  local what=$1 name=$2; shift 2
  local pid_var="PID_$name" deadline=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    alive "${!pid_var}" || fail "$name (pid ${!pid_var}) died while waiting for $what"
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.2
  done
}

# ---- munge ----------------------------------------------------------------------------------
head -c 1024 /dev/urandom > "$ROOT/munge/munge.key"
chmod 400 "$ROOT/munge/munge.key"
SOCK=$ROOT/munge/munge.socket.2
start_daemon munged "$ROOT/log/munged.out" munged --foreground --force --origin=127.0.0.1 \
  --key-file="$ROOT/munge/munge.key" --socket="$SOCK" --pid-file="$ROOT/run/munged.pid" \
  --log-file="$ROOT/log/munged.log" --seed-file="$ROOT/munge/munged.seed"
wait_for "the munge socket" munged test -S "$SOCK"

# ---- configuration ----------------------------------------------------------------------------
HOST=$(hostname -s)
if [ "$NODES" -gt 1 ]; then
  NODE_NAMES=$(for i in $(seq 1 "$NODES"); do echo "node$i"; done)
  NODE_SPEC="node[1-$NODES]"
  # Emulated nodes: one slurmd per node on this machine, each on its own port.
  NODE_LINE="NodeName=$NODE_SPEC NodeHostname=$HOST NodeAddr=127.0.0.1 Port=[$((PORT + 4))-$((PORT + 3 + NODES))]"
else
  NODE_NAMES=$HOST
  NODE_SPEC=$HOST
  NODE_LINE="NodeName=$HOST NodeAddr=127.0.0.1"
fi
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
MEM=$(( ${MEM:-1024} * 95 / 100 ))   # above what slurmd detects, the node drains ("Low RealMemory")
GRES_NODE=""
if [ "$GPUS" -gt 0 ]; then
  for i in $(seq 0 $((GPUS - 1))); do ln -s /dev/null "$ROOT/fakedev/nvidia$i"; done
  GRES_NODE="Gres=gpu:$GPUS"
  cat > "$ROOT/etc/gres.conf" <<GRES
AutoDetect=off
NodeName=$NODE_SPEC Name=gpu File=$ROOT/fakedev/nvidia[0-$((GPUS - 1))]
GRES
fi
cat > "$SLURM_CONF" <<CONF
# Generated by slurm/start.sh: a single-node cluster bound to 127.0.0.1.
ClusterName=localci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also the delay before a requeued job may start again (default 120 s).
AuthInfo=socket=$SOCK,cred_expire=5
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$ROOT/spool/ctld
SlurmdSpoolDir=$ROOT/spool/d-%n
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd-%n.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd-%n.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
# Memory is not consumable: a job without --mem must not take the whole node.
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2
KillWait=5
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
CONF
if [ "$ACCOUNTING" = 1 ]; then
  cat >> "$SLURM_CONF" <<CONF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# The slurmdbd connection takes its munge socket from here, not from AuthInfo.
AccountingStoragePass=$SOCK
CONF
fi
cat >> "$SLURM_CONF" <<CONF
$NODE_LINE CPUs=$CPUS RealMemory=$MEM $GRES_NODE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# ---- accounting: mariadb + slurmdbd --------------------------------------------------------
if [ "$ACCOUNTING" = 1 ]; then
  DBPASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  MYSOCK=$ROOT/run/mysqld.sock
  mkdir -p "$ROOT/mysql/data"
  # --no-defaults everywhere: otherwise /etc/mysql is read (datadir /var/lib/mysql, /run/mysqld).
  mariadb-install-db --no-defaults --user=root --datadir="$ROOT/mysql/data" \
    --auth-root-authentication-method=normal --skip-test-db \
    --innodb-log-file-size=8M --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    --innodb-flush-method=nosync > "$ROOT/log/mariadb-install.log" 2>&1 \
    || fail "mariadb-install-db failed (see $ROOT/log/mariadb-install.log)"
  start_daemon mariadbd "$ROOT/log/mariadbd.log" mariadbd --no-defaults --user=root \
    --datadir="$ROOT/mysql/data" --socket="$MYSOCK" --pid-file="$ROOT/run/mariadbd.pid" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
    --innodb-log-file-size=8M --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    --innodb-flush-method=nosync --innodb-buffer-pool-size=32M
  wait_for "mariadbd" mariadbd mariadb --no-defaults --socket="$MYSOCK" -uroot -e "SELECT 1"
  mariadb --no-defaults --socket="$MYSOCK" -uroot -e \
    "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;" \
    || fail "could not create the slurm database user"
  # slurmdbd has no -f: it reads slurmdbd.conf next to \$SLURM_CONF; mode 600, owned by SlurmUser.
  umask 077
  cat > "$ROOT/etc/slurmdbd.conf" <<DBD
AuthType=auth/munge
AuthInfo=socket=$SOCK
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$ROOT/run/slurmdbd.pid
LogFile=$ROOT/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
DBD
  umask 022
  start_daemon slurmdbd "$ROOT/log/slurmdbd.out" slurmdbd -D
  wait_for "slurmdbd on port $DBD_PORT" slurmdbd port_busy "$DBD_PORT"
fi

# ---- slurmctld, slurmd -------------------------------------------------------------------------
start_daemon slurmctld "$ROOT/log/slurmctld.out" slurmctld -D -c
wait_for "slurmctld (scontrol ping)" slurmctld scontrol ping
for n in $NODE_NAMES; do
  start_daemon "slurmd_$n" "$ROOT/log/slurmd-$n.out" slurmd -D -N "$n"
done
nodes_ready() {  # every node idle; a node that is INVAL or drained fails at once
  local line name st count=0
  while read -r name st; do
    case "$st" in
      *inval*|*drain*) fail "node $name is '$st': $(scontrol show node "$name" | grep -o 'Reason=.*')";;
    esac
    [ "$st" = idle ] || return 1
    count=$((count + 1))
  done < <(sinfo -h -N -o '%N %T' 2>/dev/null)
  [ "$count" -eq "$NODES" ]
}
wait_for "$NODES node(s) idle" "slurmd_${NODE_NAMES%%$'\n'*}" nodes_ready
if [ "$ACCOUNTING" = 1 ]; then
  # slurmctld registered with slurmdbd (else job records queue up in slurmctld and sacct lags).
  registered() { sacctmgr -n -P list cluster format=cluster,controlport 2>/dev/null | grep -qx "localci|$CTLD_PORT"; }
  wait_for "slurmctld registered with slurmdbd" slurmctld registered
  wait_for "sacct answering" slurmctld sacct -n -X -j 1
fi

T1=$(date +%s.%N)
log "cluster up in $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}') s under $ROOT: export SLURM_CONF=$SLURM_CONF"
