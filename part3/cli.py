"""Command-line plumbing of the part-3 scripts: bad input ends in one line on stderr, no traceback.

The same contract as every script of the project: exit code 2 for a bad option, 1 for a file or
folder that cannot be read or written (and 130 for Ctrl-C).
"""
import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main, prog):
    """Call main(); a user error (ValueError, OSError) or Ctrl-C becomes one line on stderr."""
    try:
        main()
    except OSError as e:
        # e.g. "[Errno 2] No such file or directory: 'x'" becomes "x: No such file or directory".
        fail(f"{e.filename}: {e.strerror}" if e.filename else str(e), prog)
    except ValueError as e:
        fail(str(e), prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)


def fail(message, prog):
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(1)
