#!/usr/bin/env bash
# A real SLURM check of the sweep's fault handling, on a one-node cluster started on localhost:
#
#   bash part1/experiments/slurm_check.sh        # as root, from the repository root; 3-5 minutes
#
# Needs Debian's SLURM and munge (apt-get install -y slurmctld slurmd slurm-client munge). It
#  1. runs a small sweep (two runs) without SLURM: the reference,
#  2. submits the same sweep as a two-task array (sweep.slurm) with a one-minute time limit, so that
#     SLURM's warning signal hits both running tasks; each saves its run's state,
#  3. resubmits, and cancels the array (scancel) while the saved runs are being continued,
#  4. resubmits until the array finishes,
# then checks that every run is recorded exactly once and that each equals its reference run (the
# interrupted runs continued step for step). Nothing of the repository's results is touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in slurmctld slurmd munged sbatch; do
    command -v "$tool" > /dev/null || { echo "slurm_check.sh: error: $tool not found (apt-get install -y slurmctld slurmd slurm-client munge)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/slurm_check.XXXXXX)
node=$(hostname -s)

stop_cluster() {
    local status=$?
    for pidfile in "$tmp/slurmd.pid" "$tmp/slurmctld.pid"; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    [[ -f /run/munge/munged.pid ]] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    sleep 1
    if ((status == 0)); then rm -rf "$tmp"; else echo "slurm_check.sh: failed; logs kept in $tmp" >&2; fi
}
trap stop_cluster EXIT

# --- a one-node cluster, without systemd -------------------------------------------------------
mkdir -p /run/munge "$tmp/spool" "$tmp/state"
chown munge:munge /run/munge
[[ -f /etc/munge/munge.key ]] || mungekey --create
[[ -f /run/munge/munged.pid ]] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null || su -s /bin/sh munge -c munged
cat > "$tmp/slurm.conf" <<EOF
ClusterName=check
SlurmctldHost=$node
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=10
MinJobAge=300
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
NodeName=$node CPUs=2 State=UNKNOWN
PartitionName=check Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -c
slurmd
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done

# --- the sweep: two runs of about a minute each on one core ------------------------------------
sweep=(--recipes onehot --models RNN --lengths 25 30 --seeds 0 --passes main --eval_size 2000
       --train_steps 6000 --min_steps 6000 --patience 6000)
out=(--output "$tmp/runs.csv" --curves "$tmp/curves.csv" --checkpoints "$tmp/states")
echo "reference: the two runs without SLURM"
python part1/experiments/sweep.py "${sweep[@]}" --num_threads 1 --output "$tmp/ref.csv" \
    --curves "$tmp/ref_curves.csv" --checkpoints "$tmp/ref_checkpoints" > "$tmp/reference.log"

wait_for() {  # wait_for JOB: until no task of the array is pending or running
    while squeue -h -j "$1" 2>/dev/null | grep -q .; do sleep 2; done
}
submit() {
    sbatch --parsable --array=0-1 --output="$tmp/slurm-%A_%a.log" "$@" part1/experiments/sweep.slurm \
        "${sweep[@]}" "${out[@]}"
}
partials() { find "$tmp/states" -name '*.partial.pt' 2>/dev/null | wc -l; }
rows() { [[ -f $tmp/runs.csv ]] && echo $(($(wc -l < "$tmp/runs.csv") - 1)) || echo 0; }

echo "1. a one-minute time limit: SLURM's warning signal reaches both running tasks"
job=$(submit --time=1 --signal=B:TERM@30)
wait_for "$job"
echo "   saved states: $(partials); runs recorded: $(rows)"

echo "2. resubmitted, then cancelled while the saved runs continue"
job=$(submit)
while ! grep -qs "step" "$tmp"/slurm-"$job"_*.log; do sleep 1; done
sleep 5
scancel "$job"
wait_for "$job"
echo "   saved states: $(partials); runs recorded: $(rows)"

echo "3. resubmitted until the array finishes"
for attempt in 1 2 3; do
    job=$(submit)
    wait_for "$job"
    [[ $(partials) == 0 ]] && grep -qs "nothing left to do" "$tmp"/slurm-"$job"_*.log && break
done

python - "$tmp/ref.csv" "$tmp/runs.csv" "$tmp" <<'EOF'
import sys
from pathlib import Path

from part1.common import read_csv

reference, runs = read_csv(sys.argv[1]), read_csv(sys.argv[2])
key = ("recipe", "model", "palindrome_length", "seed", "check")
machine = {"wall_time", "machine", "commit"}  # what may differ between two runs of the same code
keys = [tuple(r[k] for k in key) for r in runs]
assert len(keys) == len(set(keys)) == len(reference), f"runs recorded: {keys}"
by_key = {tuple(r[k] for k in key): r for r in runs}
for ref in reference:
    row = by_key[tuple(ref[k] for k in key)]
    differ = {c: (ref[c], row[c]) for c in ref if c not in machine and ref[c] != row[c]}
    assert not differ, f"run {tuple(ref[k] for k in key)} differs from its reference: {differ}"
logs = "".join(p.read_text() for p in Path(sys.argv[3]).glob("slurm-*.log"))
assert logs.count("its state is saved") >= 3, "expected the time limit and scancel to interrupt runs"
print(f"slurm_check.sh: every run recorded once ({len(runs)}), each equal to its uninterrupted reference; "
      f"{logs.count('its state is saved')} interruptions saved and continued")
EOF
