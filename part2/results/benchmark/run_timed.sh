#!/usr/bin/env bash
# The timed benchmark: the user's commands, the defaults, only the book and the budget given.
# Run from the repository root on an otherwise idle machine (a shared machine makes the clock
# meaningless), one run after another:
#   bash part2/results/benchmark/run_timed.sh [OUT] [SEEDS_OF_THE_10_MINUTE_RUNS]
# (defaults: part2/results/benchmark/timed and "0 1 2"). Each run's metrics.csv and samples.txt go
# to OUT/NAME/ (the checkpoints stay in summaries/timed/); the machine's CPU and load are noted in
# OUT/machine.txt.
set -euo pipefail
book=${BOOK:-assets/tiny_shakespeare.txt}  # fetch it as assets/README.md says
out=${1:-part2/results/benchmark/timed}
ten_minute_seeds=${2:-0 1 2}
mkdir -p "$out"
{
    lscpu | grep -E '^(Model name|CPU\(s\)):'
    echo "bfloat16 flags: $(grep -o -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    python -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
    date -u
} > "$out/machine.txt"

timed() {
    local name=$1
    shift
    echo "load average before $name: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
    python part2/train.py --txt_file "$book" "$@" --summary_path "summaries/$(basename "$out")/$name"
    mkdir -p "$out/$name"
    cp "summaries/$(basename "$out")/$name/metrics.csv" "summaries/$(basename "$out")/$name/samples.txt" "$out/$name/"
}

timed 70s_seed0 --max_time 70 --seed 0
timed 70s_seed1 --max_time 70 --seed 1
timed 70s_seed2 --max_time 70 --seed 2
for seed in $ten_minute_seeds; do
    timed "10min_seed$seed" --max_time 600 --seed "$seed"
done
python part2/experiments/benchmark.py "$out" | tee "$out/table.md"
