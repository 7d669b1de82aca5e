"""Write LaTeX snippets for the report from a committed run (metrics.csv, samples.txt, checkpoint.pt).

    python part2/experiments/report_outputs.py part2/results/grimm     # writes report/generated/part2_*.tex

Nothing in the snippets is typed by hand: numbers come from metrics.csv and the checkpoint's
options, samples are quoted from samples.txt, the completions of the prompts are decoded from the
checkpoint (deterministic on the CPU), and the reasons given for the hyperparameters quote the
fixed-step ablation on tiny Shakespeare (part2/results/benchmark/fixed_1800).
"""
import json
import re
from pathlib import Path

import torch

from part1 import common  # noqa: E402
from part2.experiments.benchmark import SEED, final_values  # noqa: E402
from part2.experiments.plot import read_metrics  # noqa: E402
from part2.generate import beam_search, decode, encode, generate, load_checkpoint, log_prob  # noqa: E402

COMPLETION_LENGTH = 60
# The assignment's prompt, the tale's name in this translation ("Briar Rose"; "Sleeping Beauty" is
# not in the book), an opening in the book's style, and a sentence from outside the book.
PROMPTS = ("Sleeping beauty is", "Briar Rose", "The king said to his daughter", "The train to Amsterdam was late because")
RESULTS = Path(__file__).resolve().parents[1] / "results"
BEAM_SIZES = (3, 10)
TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&",
               "#": r"\#", "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}",
               "~": r"\textasciitilde{}"}


def tex(text):
    return "".join(TEX_SPECIAL.get(ch, ch) for ch in text)


def quoted(text):
    """A sample as samples.txt shows it (newlines as \\n), typeset in typewriter font."""
    return r"\texttt{" + tex(json.dumps(text, ensure_ascii=False)[1:-1]) + "}"


def read_samples(path):
    """{step: [(kind, text), ...]} from samples.txt."""
    samples, step = {}, None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"step (\d+)", line):
            step = int(match[1])
            samples[step] = []
        elif line.strip():
            kind, text = line.split(None, 1)
            samples[step].append((kind, json.loads(text)))
    return samples


def pick_steps(steps, n=4):
    """The first sample step, the last, and those closest to log-spaced steps between them."""
    first, last = steps[0], steps[-1]
    targets = [first * (last / first) ** (i / (n - 1)) for i in range(n)]
    return sorted({min(steps, key=lambda s: abs(s - t)) for t in targets})


def grouped_runs(folder):
    """{name without its _sN seed suffix: [final values of each seed's metrics.csv]} of a folder of runs."""
    groups = {}
    for path in sorted(Path(folder).glob("*/metrics.csv")):
        groups.setdefault(SEED.sub("", path.parent.name), []).append(final_values(path))
    return groups


def ablation_loss(groups, name):
    """The mean final validation loss of one fixed-step ablation, as text."""
    runs = groups[name]
    return f"{sum(r['val_loss'] for r in runs) / len(runs):.3f}"


def hyperparameters(options, n_params, steps, metrics, ablation):
    """Each hyperparameter with its value and the reason for it: a committed ablation (final validation
    loss on tiny Shakespeare, mean over the seeds run), the assignment, or the template."""
    groups = grouped_runs(ablation)
    default = ablation_loss(groups, "default")
    best_step, best_loss = min(metrics["val_loss"], key=lambda point: point[1])
    lr = options["learning_rate"]
    schedule = (f"${lr:g}\\cdot{options['learning_rate_decay']:g}^{{\\lfloor s/{options['learning_rate_step']}\\rfloor}}"
                + (f"(1-\\frac{{s}}{{{steps}}})$" if options.get("linear_decay") else "$"))
    rows = [("sequence length $T$", options["seq_length"], "asked by the assignment"),
            ("layers $\\times$ units", f"{options['lstm_num_layers']} $\\times$ {options['lstm_num_hidden']}",
             "two layers: the assignment; 128 units: the template's default"),
            ("embedding size", options["embedding_dim"] or "one-hot",
             "our choice: characters can share statistics (not ablated)"),
            ("batch size", options["batch_size"], "the template's default"),
            ("optimizer", f"AdamW (weight decay {options['weight_decay']:g})" if options.get("weight_decay") else "Adam",
             "little tuning needed \\citep{kingma2015adam}"),
            ("learning rate at step $s$", schedule,
             f"{lr:g} at the start (the template: 2e-3): {default} against {ablation_loss(groups, 'lr4e-3')} "
             f"with 4e-3; without the linear decay to 0, {ablation_loss(groups, 'no_linear')}; "
             "the step decay is the template's"),
            ("training steps", steps, f"a budget of minutes on a CPU; the validation loss was lowest at step "
             f"{best_step:,} ({best_loss:.3f})".replace(",", "\\,")),
            ("read-out bias at start", "log char.\\ frequencies" if options.get("unigram_bias") else "random",
             f"{default} against {ablation_loss(groups, 'no_unigram')} when random"),
            ("dropout keep probability", f"{options['dropout_keep_prob']:g}"
             + (" (also on the LSTM's input and output)" if options.get("io_dropout") else ""), "the template's default"),
            ("gradient-norm clipping", f"{options['max_norm']:g}", "the template's default"),
            ("arithmetic, seed", f"{options.get('precision', 'float32')}, {options['seed']}", "PyTorch's default; any seed"),
            ("parameters", f"{n_params:,}".replace(",", "\\,"), "follows from the above")]
    lines = [f"{name} & {value} & {why} \\\\" for name, value, why in rows]
    return ("\\begin{tabular}{@{}llp{0.5\\linewidth}@{}}\n\\toprule\nhyperparameter & value & why \\\\\n"
            "\\midrule\n" + "\n".join(lines) + "\n\\bottomrule\n\\end{tabular}\n")


def sample_table(samples, steps, per_line=2):
    """The greedy samples of each step, `per_line` to a line."""
    blocks = []
    for step in steps:
        greedy = [quoted(text) for kind, text in samples[step] if kind == "greedy"]
        lines = [greedy[i:i + per_line] for i in range(0, len(greedy), per_line)]
        blocks.append(" \\\\\n".join(f"{step if i == 0 else ''} & " + " & ".join(line + [""] * (per_line - len(line)))
                                       for i, line in enumerate(lines)) + " \\\\")
    return (f"\\begin{{tabular}}{{r{'l' * per_line}}}\n\\toprule\n"
            f"step & \\multicolumn{{{per_line}}}{{l}}{{greedy samples, 30 characters}} \\\\\n"
            "\\midrule\n" + "\n\\midrule\n".join(blocks) + "\n\\bottomrule\n\\end{tabular}\n")


def loop(text, min_repeats=2):
    """(start, period) of the longest cycle `text` ends in: from `start` on, every character
    equals the one `period` later, over at least `min_repeats` periods; of the periods that reach
    back furthest, the shortest. None if the text ends in no such cycle."""
    best = None
    for period in range(1, len(text) // min_repeats + 1):
        start = len(text) - period
        while start > 0 and text[start - 1] == text[start - 1 + period]:
            start -= 1
        if len(text) - start >= min_repeats * period and (best is None or start < best[0]):
            best = (start, period)
    return best


def labelled_table(header, rows, width="0.8\\linewidth", columns="l"):
    body = "\n".join(f"{label} & {text} \\\\" for label, text in rows)
    return (f"\\begin{{tabular}}{{{columns}p{{{width}}}}}\n\\toprule\n{header} \\\\\n\\midrule\n"
            f"{body}\n\\bottomrule\n\\end{{tabular}}\n")


def completions(model, vocab, prompt_text):
    """Greedy and beam-search continuations of the prompt with their summed log-probabilities."""
    prompt = torch.tensor(encode(vocab, prompt_text))
    greedy = generate(model, prompt[None], COMPLETION_LENGTH)[0]
    rows = [("greedy", greedy, log_prob(model, prompt, greedy))]
    for k in BEAM_SIZES:
        ids, score = beam_search(model, prompt, COMPLETION_LENGTH, k)
        rows.append((f"beam, $B={k}$", ids, score))
    return [(label, decode(vocab, ids.tolist()), score) for label, ids, score in rows]


def completion_table(decoded):
    """One block per prompt ({prompt: completions}): the prompt, then greedy decoding and each beam width
    with the continuation alone and its summed log-probability."""
    blocks = [f"prompt & {quoted(prompt)} \\\\\n" + "\n".join(
        f"{label} ({score:.2f}) & {quoted(text)} \\\\" for label, text, score in rows) for prompt, rows in decoded.items()]
    return ("\\begin{tabular}{@{}lp{0.74\\linewidth}@{}}\n\\toprule\n"
            f"decoding (log-probability) & the next {COMPLETION_LENGTH} characters \\\\\n\\midrule\n"
            + "\n\\midrule\n".join(blocks) + "\n\\bottomrule\n\\end{tabular}\n")


def write_snippets(run, out, prompts, ablation=RESULTS / "benchmark" / "fixed_1800",
                   benchmark=RESULTS / "benchmark" / "timed_check"):
    run, out = Path(run), Path(out)
    metrics = read_metrics(run / "metrics.csv")
    samples = read_samples(run / "samples.txt")
    model, vocab, options = load_checkpoint(run / "checkpoint.pt")
    decoded = {prompt: completions(model, vocab, prompt) for prompt in prompts}
    ablation_steps = grouped_runs(ablation)["default"][0]["step"]
    # prompts on which every wider beam found a likelier continuation than the narrower one
    rising = sum(all(a[2] < b[2] for a, b in zip(rows, rows[1:], strict=False)) for rows in decoded.values())
    n_params = sum(p.numel() for p in model.parameters())
    step, val_loss = metrics["val_loss"][-1]
    val_accuracy = metrics["val_accuracy"][-1][1]
    seconds = metrics["seconds"][-1][1]
    sample_steps = sorted(samples)
    long_samples = [text for s in sample_steps for kind, text in samples[s] if kind == "greedy_long"]
    last = sample_steps[-1]
    out.mkdir(parents=True, exist_ok=True)
    header = f"% generated by part2/experiments/report_outputs.py from {run.as_posix()}; do not edit\n"

    macros = {"PartTwoValLoss": f"{val_loss:.3f}", "PartTwoValAccuracy": f"{100 * val_accuracy:.1f}",
              "PartTwoSteps": f"{step:,}".replace(",", "\\,"),
              "PartTwoMinutes": f"{seconds / 60:.0f}",
              "PartTwoParams": f"{n_params:,}".replace(",", "\\,"),
              "PartTwoLastSampleStep": f"{last:,}".replace(",", "\\,"),
              "PartTwoPrompt": tex(prompts[0]), "PartTwoPrompts": str(len(prompts)),
              "PartTwoBeamRising": str(rising), "PartTwoBenchmarkMachine": tex(benchmark_machine(benchmark)),
              "PartTwoAblationSteps": f"{ablation_steps:,}".replace(",", "\\,"),
              # of the stages' 200-character greedy samples, how many end in a loop (`loop`)
              "PartTwoLongStages": str(len(long_samples)),
              "PartTwoLongLooping": str(sum(loop(text) is not None for text in long_samples))}
    (out / "part2_results.tex").write_text(header + "".join(
        f"\\newcommand{{\\{name}}}{{{value}}}\n" for name, value in macros.items()))
    (out / "part2_hyperparameters.tex").write_text(
        header + hyperparameters(options, n_params, step, metrics, ablation))
    (out / "part2_samples.tex").write_text(header + sample_table(samples, pick_steps(sample_steps)))
    long_rows = [(f"{s} & " + ("-- & --" if (cycle := loop(text)) is None else f"{cycle[0]} & {cycle[1]}"),
                  quoted(text))
                 for s in pick_steps(sample_steps, 3) for kind, text in samples[s] if kind == "greedy_long"]
    (out / "part2_long_samples.tex").write_text(header + labelled_table(
        "step & before loop & period & greedy sample, 200 characters", long_rows, "0.64\\linewidth",
        columns="rrr"))
    tau_rows = [(f"$\\tau={kind[4:]}$", quoted(text)) for kind, text in samples[last]
                if kind.startswith("tau=")]
    (out / "part2_temperature.tex").write_text(
        header + labelled_table(f"$\\tau$ & samples of 100 characters at step {last}", tau_rows))
    (out / "part2_completions.tex").write_text(header + completion_table(decoded))


def benchmark_machine(folder):
    """The machine of the timed runs as their machine.txt (lscpu's lines) names it, e.g. "AMD EPYC, 2 cores"."""
    path = Path(folder) / "machine.txt"
    fields = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line) if path.exists() else {}
    name = fields.get("Model name", "CPU not recorded").strip()
    return name + (f", {fields['CPU(s)'].strip()} cores" if "CPU(s)" in fields else "")


def benchmark_table(folder):
    """The timed tiny-Shakespeare runs (part2/results/benchmark/timed_check): one row per budget (and
    model, where a folder name ends in _hN: N hidden units instead of the default),
    each evaluation as the mean over seeds (± sample standard deviation when there are several)."""
    groups = grouped_runs(folder)
    cpu = benchmark_machine(folder)
    rows = []
    for name, runs in sorted(groups.items(), key=lambda item: item[1][0]["seconds"]):
        cells = [re.sub(r"_h(\d+)$", r", \1 units", re.sub(r"^(\d+)", r"\1 ", name)), str(len(runs)),  # 70s -> 70 s
                 " / ".join(f"{r['step']:,}".replace(",", "\\,") for r in runs)]
        for column in ("val_loss", "val_loss_window", "val_loss_window_256"):
            values = [r[column] for r in runs]
            mean = sum(values) / len(values)
            spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
            cells.append(f"{mean:.3f}" + (f" $\\pm$ {spread:.3f}" if spread is not None else ""))
        rows.append(" & ".join(cells) + r" \\")
    return (f"% {tex(cpu)}\n\\begin{{tabular}}{{lllccc}}\n\\toprule\n"
            r"budget & seeds & steps & carried state & fresh, 30 chars & fresh, 256 chars \\" "\n\\midrule\n"
            + "\n".join(rows) + "\n\\bottomrule\n\\end{tabular}\n")


def main(argv=None):
    p = common.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="folder with metrics.csv, samples.txt and checkpoint.pt")
    p.add_argument("--prompt", nargs="+", default=list(PROMPTS), help="the sentences to complete")
    p.add_argument("--out", default=Path(__file__).resolve().parents[2] / "report" / "generated",
                   help="folder for the .tex files (default: report/generated)")
    p.add_argument("--benchmark", type=Path,
                   default=RESULTS / "benchmark" / "timed_check",
                   help="folder of the timed tiny-Shakespeare runs, for part2_benchmark.tex")
    args = p.parse_args(argv)
    write_snippets(args.run, args.out, args.prompt, benchmark=args.benchmark)
    if (args.benchmark / "machine.txt").exists():
        (Path(args.out) / "part2_benchmark.tex").write_text(
            f"% generated by part2/experiments/report_outputs.py from {args.benchmark.name}; do not edit\n"
            + benchmark_table(args.benchmark))


if __name__ == "__main__":
    common.run(main, "report_outputs.py")
