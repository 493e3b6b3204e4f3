"""Exceptions that the CLI maps to exit codes (see ``docs/exit-codes.md``).

A ``UserError`` is bad input (a config key, a data file, an ensemble file): the CLI prints its
one-line message and exits with status 2, without a traceback.
"""
from __future__ import annotations

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
