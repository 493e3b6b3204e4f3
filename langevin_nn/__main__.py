"""``python -m langevin_nn`` and the ``langevin-nn`` command (``start``).

The stop signals are handled before the CLI is imported (click, numpy, numba, h5py: about half
a second), so that a SIGTERM or SIGUSR1 in that time (a scheduler cancelling a job that has just
started) exits 75 with the line of a stop before any checkpoint, as it does later, instead of
killing the process with status -15. Only the interpreter's own start-up is left unhandled."""
from .errors import StoppedEarly, stop_early_on_signals


def start(argv=None):
    stop_early_on_signals()
    try:
        from .cli import main
    except StoppedEarly as e:
        import sys

        print(e, file=sys.stderr)
        sys.exit(e.exit_code)
    main(argv)


if __name__ == "__main__":
    start()
