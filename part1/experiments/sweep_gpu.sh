#!/usr/bin/env bash
# The part-1 sweep on a machine with a GPU and many cores, for a fixed time:
#
#     bash part1/experiments/sweep_gpu.sh SECONDS [GPU_PROCESSES] [CPU_PROCESSES]
#
# The long runs (LSTM recipes with T >= 50, the tuned RNN with T >= 50) go to the GPU, GPU_PROCESSES
# (default 12) shards sharing it; the short runs (T <= 40) of every recipe to CPU_PROCESSES (default 4)
# one-thread shards. What is left (the template recipes at T >= 50 where they still climb, the extra
# seeds and the convergence check, which wait for the main pass) a plain `python part1/experiments/sweep.py` does.
# Every process is a shard of part1/experiments/sweep.py with its own selection, so none repeats another's run,
# and all append to part1/results/sweep_runs.csv. After SECONDS every process is interrupted: a run
# still going is not recorded, and its state is saved in part1/checkpoints/NAME.partial.pt, from
# which the next sweep on the same kind of device continues it (bring part1/checkpoints back and
# along). Rows record the device they ran on.
set -m  # background jobs in their own process groups, so that SIGINT reaches them (a clean stop)
seconds=${1:?usage: bash part1/experiments/sweep_gpu.sh SECONDS [GPU_PROCESSES] [CPU_PROCESSES]}
gpu=${2:-12}
cpu=${3:-4}
cd "$(dirname "$0")/.." || exit 1
mkdir -p part1/results/logs
export PYTHONUNBUFFERED=1
pids=()
for ((i = 0; i < gpu; i++)); do
    if ((i < gpu * 5 / 6 || gpu == 1)); then
        selection=(--recipes tuned curriculum forget_bias chrono --models LSTM --shard "$i/$((gpu * 5 / 6 > 0 ? gpu * 5 / 6 : 1))")
    else
        j=$((i - gpu * 5 / 6))
        selection=(--recipes tuned --models RNN --shard "$j/$((gpu - gpu * 5 / 6))")
    fi
    timeout -s INT -k 60 "$seconds" python3 part1/experiments/sweep.py "${selection[@]}" --min_length 50 --passes main \
        --device cuda > "part1/results/logs/gpu$i.log" 2>&1 &
    pids+=($!)
done
for ((i = 0; i < cpu; i++)); do
    timeout -s INT -k 60 "$seconds" python3 part1/experiments/sweep.py --max_length 40 --passes main \
        --device cpu --num_threads 1 --shard "$i/$cpu" > "part1/results/logs/cpu$i.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
grep -h "^\[" part1/results/logs/*.log
