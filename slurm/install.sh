#!/usr/bin/env bash
# Install the Debian packages of the local single-node SLURM cluster (root, Debian 12).
#
# Idempotent: does nothing when every binary is already on PATH. The packages' postinst
# scripts would try to start munge, slurm and mariadb through invoke-rc.d; a temporary
# /usr/sbin/policy-rc.d (exit 101) forbids that when the machine has none, so nothing starts
# here: slurm/start.sh starts its own daemons on private ports and sockets.
set -euo pipefail

need=(munged slurmctld slurmd slurmdbd sbatch srun sacct sacctmgr scontrol mariadbd mariadb-install-db)
missing=()
for b in "${need[@]}"; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || [ -x "/usr/bin/$b" ] || missing+=("$b")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm/install.sh: missing ${missing[*]}; installing them needs root (apt-get)" >&2
  exit 1
fi
echo "slurm/install.sh: installing SLURM, munge, slurmdbd and MariaDB (missing: ${missing[*]})" >&2

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null
echo "slurm/install.sh: done" >&2
