"""Exceptions that the CLI maps to exit codes (see ``docs/exit-codes.md``).

A ``UserError`` is bad input (a config key, a data file, an ensemble file): the CLI prints its
one-line message and exits with status 2, without a traceback.
"""
from __future__ import annotations

import signal

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_ALL_DIVERGED = 3
EXIT_SIGNAL = 75


class UserError(Exception):
    """Bad input from the user: the message names the culprit (a TOML key or a file)."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """A malformed or inconsistent configuration; the message starts with the TOML key."""


class FormatError(UserError):
    """A file that is not a langevin_nn ensemble file, or is corrupt or incompatible."""


class StoppedEarly(BaseException):
    """A stop signal (SIGTERM, SIGUSR1) before a run had installed its checkpointing handler:
    nothing is written yet, so the commands print ``str(e)`` and exit 75. A ``BaseException``,
    like ``KeyboardInterrupt``, so that no ``except Exception`` of the code (or of a library
    being imported) swallows it."""

    exit_code = EXIT_SIGNAL

    def __init__(self, signame: str):
        super().__init__(f"stopped by {signame} before any checkpoint; nothing to resume")


def _raise_stopped_early(signum, frame):
    raise StoppedEarly(signal.Signals(signum).name)


def on_stop_signals(handler, names=("SIGTERM", "SIGUSR1", "SIGINT")) -> None:
    """``handler`` for the stop signals of ``names`` that this platform has."""
    for name in names:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def stop_early_on_signals() -> None:
    """From here until a run installs its own handler, SIGTERM and SIGUSR1 raise
    ``StoppedEarly`` (SIGINT stays Python's KeyboardInterrupt)."""
    on_stop_signals(_raise_stopped_early, ("SIGTERM", "SIGUSR1"))
