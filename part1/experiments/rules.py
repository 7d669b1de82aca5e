"""What the sweep's words mean, written once: the sweep (sweep.py) plans its runs with these rules and
the tables and figures (plot.py) report with the same ones.

A run is one row of results/sweep_runs.csv (a dict of strings, as the CSV reader gives it). T is the
palindrome length; "the normal budget" is a row with check False, "a check" one with check True.
"""
import statistics

SOLVED = 0.99  # a run solves its length when its held-out accuracy reaches this
MAIN_SEEDS = (0, 1, 2)  # the main pass: every recipe, model and length
NEAR_SEEDS = (3, 4)  # the near pass: more seeds at the horizon and at the first length past it


def solved(run):
    """A run solved its length: held-out accuracy >= SOLVED."""
    return float(run["eval_accuracy"]) >= SOLVED


def failed_seeds(runs):
    """The seeds (ints, in order) of the runs that did not solve: the runs a convergence check repeats."""
    return sorted(int(r["seed"]) for r in runs if not solved(r))


def by_length(rows, recipe, model):
    """{T: [run per seed]} of one recipe and model at the normal budget (the convergence checks left out)."""
    table = {}
    for r in rows:
        if (r["recipe"], r["model"], r["check"]) == (recipe, model, "False"):
            table.setdefault(int(r["palindrome_length"]), []).append(r)
    return table


def horizon(runs_by_length, min_seeds=None):
    """The longest T whose mean held-out accuracy over its runs is >= SOLVED, or None. A length with
    fewer than `min_seeds` runs (default: the main pass's seeds; fewer: its main pass is still under way,
    or a run was made apart) does not count."""
    min_seeds = len(MAIN_SEEDS) if min_seeds is None else min_seeds
    return max((T for T, runs in runs_by_length.items() if len(runs) >= min_seeds
                and statistics.mean(float(r["eval_accuracy"]) for r in runs) >= SOLVED), default=None)


def first_past(lengths, h):
    """The first of a recipe's lengths past the horizon h (h None: its first length), or None."""
    return next((T for T in sorted(lengths) if h is None or T > h), None)


def stopped_climbing(runs_by_length, lengths, T, seeds=MAIN_SEEDS):
    """The two successive lengths below T at which every seed failed, or None: then T is not run."""
    below = [L for L in sorted(lengths) if L < T]
    for a, b in zip(below, below[1:], strict=False):
        if all(len(runs_by_length.get(L, [])) >= len(seeds) and not any(map(solved, runs_by_length[L]))
               for L in (a, b)):
            return a, b
    return None


def check_verdict(runs, checks):
    """The convergence check at one length: `runs` at the normal budget, `checks` the check runs there.

    Returns (the checks of the failed runs, by seed; verdict): None when no run failed (nothing to
    check), "pending" until every failed run has its check, then "moves" if the mean accuracy with each
    check in place of the run it repeats reaches SOLVED (the budget decided the horizon), else "stands".
    A check of a run that solved is left out: it repeats a solved run.
    """
    failed = failed_seeds(runs)
    if not failed:
        return {}, None
    redone = {int(c["seed"]): c for c in checks if int(c["seed"]) in failed}
    if len(redone) < len(failed):
        return redone, "pending"
    after = [float(redone.get(int(r["seed"]), r)["eval_accuracy"]) for r in runs]
    return redone, "moves" if statistics.mean(after) >= SOLVED else "stands"
