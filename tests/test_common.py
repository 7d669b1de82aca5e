"""The shared run plumbing of part1/common.py: stop signals, output locks, CSV rows that survive a kill."""
import os
import signal
import subprocess
import sys
import time

import pytest

from part1 import common


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_asks_the_loop_to_stop(sig):
    before = signal.getsignal(sig)
    with common.StopOnInterrupt() as stop:
        os.kill(os.getpid(), sig)
        time.sleep(0.01)  # the handler runs between bytecodes of the main thread
        assert stop.requested and stop.signal_name == signal.Signals(sig).name
        if sig == signal.SIGINT:  # a second Ctrl-C stops at once
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), sig)
                time.sleep(0.01)
        else:  # SLURM's scancel reaches the run twice (directly and through sweep.slurm): still saving
            os.kill(os.getpid(), sig)
            time.sleep(0.01)
            assert stop.signal_name == signal.Signals(sig).name
    assert signal.getsignal(sig) is before


def test_a_second_run_on_a_locked_folder_is_refused_with_the_owner(tmp_path):
    with common.OutputLock(tmp_path):
        with pytest.raises(ValueError, match=rf"in use by another run \(pid {os.getpid()}\)"):
            with common.OutputLock(tmp_path):
                pass
    with common.OutputLock(tmp_path):  # released on exit
        pass


def test_a_killed_owner_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from part1.common import OutputLock\n"
        f"with OutputLock({str(tmp_path)!r}):\n    print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"pid {holder.pid}"):
            with common.OutputLock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with common.OutputLock(tmp_path):
        pass


def test_rows_are_appended_whole_and_a_torn_last_line_is_cut_not_glued(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    common.append_csv_rows(path, ["a", "b"], [{"a": 1, "b": 2}])
    common.append_csv_rows(path, ["a", "b"], [{"a": 3, "b": 4}, {"a": 5, "b": "x,y"}])
    assert common.read_csv(path) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}, {"a": "5", "b": "x,y"}]
    with open(path, "a") as f:
        f.write("7,8")  # a writer killed before the end of its row
    assert common.read_csv(path)[-1] == {"a": "5", "b": "x,y"}
    assert "skipped a torn last line" in capsys.readouterr().err
    common.append_csv_rows(path, ["a", "b"], [{"a": 9, "b": 10}])
    assert path.read_text() == "a,b\n1,2\n3,4\n5,\"x,y\"\n9,10\n"


def test_a_file_that_is_not_our_csv_is_a_value_error(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_text("a,b\n1,2,3,4\n")
    with pytest.raises(ValueError, match="not a CSV file"):
        common.read_csv(path)
    path.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(ValueError):
        common.read_csv(path)


def test_a_full_disk_is_an_oserror_and_leaves_the_saved_file_as_it_was(tmp_path):
    path = tmp_path / "checkpoint.pt"
    common.save_atomically({"step": 1}, path)
    before = path.read_bytes()
    # A file-size limit stands in for a full disk: writes past it fail as they do with ENOSPC.
    code = ("import resource, signal, sys, torch\n"
            "from part1.common import save_atomically\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
            "try:\n"
            f"    save_atomically({{'weights': torch.zeros(10000)}}, {str(path)!r})\n"
            "except OSError as e:\n"
            "    print(type(e).__name__, e.errno); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
