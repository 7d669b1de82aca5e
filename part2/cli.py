"""Command-line plumbing shared by the part-2 scripts: bad input ends in one line, not a traceback."""
import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


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
