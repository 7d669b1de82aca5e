"""Run the project's scripts as a user does, but inside the test process (no new Python to start).

`run_script("part1/train.py", ...)` executes the file's own `__main__` block, as
`python part1/train.py ...` does from the repository root; `run_script("part1.train", ...)` is
`python -m part1.train ...`. Output and exit code are returned as subprocess.run returns them.
"""
import contextlib
import io
import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import torch

ROOT = Path(__file__).resolve().parent.parent


def run_script(script, *args):
    argv = [script, *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    cwd, threads, code = os.getcwd(), torch.get_num_threads(), 0
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                mock.patch.object(sys, "argv", argv), warnings.catch_warnings():
            # run_module warns that the module was imported before (by the tests): harmless here.
            warnings.simplefilter("ignore", RuntimeWarning)
            if script.endswith(".py"):
                runpy.run_path(str(ROOT / script), run_name="__main__")
            else:
                runpy.run_module(script, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)  # a script may set its own
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def run_python(*args, timeout=120):
    """A new Python process from the repository root: for what needs one (start-up, Ctrl-C).
    One thread, as in the tests' own process: on a busy machine two threads stall each other."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=os.environ | {"OMP_NUM_THREADS": "1"})
