#!/usr/bin/env bash
# Fixed-step ablations on tiny shakespeare: one thread, steps instead of the clock, so every run
# repeats exactly. Each line: NAME STEPS OPTIONS. The run goes to summaries/ablation/NAME and its
# metrics.csv is copied to part2/results/benchmark/ablation/NAME/. Runs already copied are skipped.
#   bash part2/results/benchmark/run_ablation.sh [JOBS] [NAME_PATTERN]
# From the repository root; JOBS runs at a time (default 1), only names matching NAME_PATTERN.
set -euo pipefail
jobs=${1:-1}
pattern=${2:-.}
book=${BOOK:-assets/tiny_shakespeare.txt}  # fetch it as assets/README.md says
results=part2/results/benchmark/ablation

run() {
    local name=$1 steps=$2
    shift 2
    [[ -f $results/$name/metrics.csv ]] && return 0
    python part2/train.py --txt_file "$book" --train_steps "$steps" --num_threads 1 \
        --eval_every 1000 --sample_every 1000000 --summary_path "summaries/ablation/$name" "$@" \
        > /dev/null 2> "summaries/ablation/$name.log" || { echo "$name failed" >&2; return 1; }
    mkdir -p "$results/$name"
    cp "summaries/ablation/$name/metrics.csv" "$results/$name/"
    echo "$name done"
}
export -f run
export book results
mkdir -p summaries/ablation

grep -v '^#' <<'RUNS' | grep -E -- "$pattern" | xargs -P "$jobs" -L 1 bash -c 'run "$@"' _
# 70 s: float32 makes about 1,800 steps on two idle threads; a bfloat16 step takes half the CPU
# time on one thread (speed.md), two threads gain less from it: 2,500 steps is a cautious count
fp32_1800_s0 1800 --precision float32 --weight_decay 0 --seed 0
fp32_1800_s1 1800 --precision float32 --weight_decay 0 --seed 1
fp32_1800_s2 1800 --precision float32 --weight_decay 0 --seed 2
bf16_2500_s0 2500 --precision bfloat16 --weight_decay 0 --seed 0
bf16_2500_s1 2500 --precision bfloat16 --weight_decay 0 --seed 1
bf16_2500_s2 2500 --precision bfloat16 --weight_decay 0 --seed 2
# Levers at 70 s, on top of bfloat16
tie_2500_s0 2500 --precision bfloat16 --embedding_dim 128 --tie_weights --weight_decay 0 --seed 0
tie_2500_s1 2500 --precision bfloat16 --embedding_dim 128 --tie_weights --weight_decay 0 --seed 1
keep0.9_2500_s0 2500 --precision bfloat16 --dropout_keep_prob 0.9 --weight_decay 0 --seed 0
keep0.9_2500_s1 2500 --precision bfloat16 --dropout_keep_prob 0.9 --weight_decay 0 --seed 1
wd0.1_2500_s0 2500 --precision bfloat16 --weight_decay 0.1 --seed 0
wd0.1_2500_s1 2500 --precision bfloat16 --weight_decay 0.1 --seed 1
wd0.1_2500_s2 2500 --precision bfloat16 --weight_decay 0.1 --seed 2
wd0.3_2500_s0 2500 --precision bfloat16 --weight_decay 0.3 --seed 0
wd0.3_2500_s1 2500 --precision bfloat16 --weight_decay 0.3 --seed 1
wd0.05_2500_s0 2500 --precision bfloat16 --weight_decay 0.05 --seed 0
wd0.05_2500_s1 2500 --precision bfloat16 --weight_decay 0.05 --seed 1
wd0.15_2500_s0 2500 --precision bfloat16 --weight_decay 0.15 --seed 0
wd0.15_2500_s1 2500 --precision bfloat16 --weight_decay 0.15 --seed 1
# Wider with weight decay: a bfloat16 step with 192 hidden units took about 1.7 times the CPU time
# of one with 128 in a short trial, so about 1,450 steps in the time of 2,500
h192_wd0.1_1450_s0 1450 --precision bfloat16 --lstm_num_hidden 192 --weight_decay 0.1 --seed 0
h192_wd0.1_1450_s1 1450 --precision bfloat16 --lstm_num_hidden 192 --weight_decay 0.1 --seed 1
h192_wd0.1_1450_s2 1450 --precision bfloat16 --lstm_num_hidden 192 --weight_decay 0.1 --seed 2
# and 256 hidden units: about 3 times the CPU time of 128 (speed.md), about 850 steps
h256_wd0.1_850_s0 850 --precision bfloat16 --lstm_num_hidden 256 --weight_decay 0.1 --seed 0
h256_wd0.1_850_s1 850 --precision bfloat16 --lstm_num_hidden 256 --weight_decay 0.1 --seed 1
# 10 min: hidden 256 with dropout, bfloat16, about 10,000 steps
h256_keep0.8_10k_s0 10000 --precision bfloat16 --lstm_num_hidden 256 --dropout_keep_prob 0.8 --weight_decay 0 --seed 0
# The 10-minute defaults against the 70-second ones, at equal CPU time (with weight decay 0.1):
# a bfloat16 step with 192 units takes 42.3 ms, with 256 units 72.5 ms (speed.md), so 17,000 steps
# of 192 units cost what 10,000 of 256 do (about what ten minutes buy on two threads)
h256_keep0.8_wd0.1_10k_s0 10000 --precision bfloat16 --lstm_num_hidden 256 --dropout_keep_prob 0.8 --weight_decay 0.1 --seed 0
h192_wd0.1_17k_s0 17000 --precision bfloat16 --lstm_num_hidden 192 --dropout_keep_prob 1.0 --weight_decay 0.1 --seed 0
h192_keep0.8_wd0.1_17k_s0 17000 --precision bfloat16 --lstm_num_hidden 192 --dropout_keep_prob 0.8 --weight_decay 0.1 --seed 0
h256_keep0.8_wd0.1_10k_s1 10000 --precision bfloat16 --lstm_num_hidden 256 --dropout_keep_prob 0.8 --weight_decay 0.1 --seed 1
h192_wd0.1_17k_s1 17000 --precision bfloat16 --lstm_num_hidden 192 --dropout_keep_prob 1.0 --weight_decay 0.1 --seed 1
h192_keep0.8_wd0.1_17k_s1 17000 --precision bfloat16 --lstm_num_hidden 192 --dropout_keep_prob 0.8 --weight_decay 0.1 --seed 1
h256_keep0.8_wd0.1_10k_s2 10000 --precision bfloat16 --lstm_num_hidden 256 --dropout_keep_prob 0.8 --weight_decay 0.1 --seed 2
h192_wd0.1_17k_s2 17000 --precision bfloat16 --lstm_num_hidden 192 --dropout_keep_prob 1.0 --weight_decay 0.1 --seed 2
h192_keep0.8_wd0.1_17k_s2 17000 --precision bfloat16 --lstm_num_hidden 192 --dropout_keep_prob 0.8 --weight_decay 0.1 --seed 2
RUNS
