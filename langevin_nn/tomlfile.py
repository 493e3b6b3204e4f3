"""Reading a TOML file given by the user (a config, a sweep file), with one-line errors."""
from __future__ import annotations

import tomllib

from .errors import UserError


def read_toml(path: str, kind: str, error: type[UserError] = UserError) -> tuple[str, dict]:
    """``(text, table)`` of the TOML file ``path``; a missing, unreadable, non-UTF-8 or malformed
    file raises ``error`` with a one-line message naming the file and saying it is a ``kind``
    file (``"config"``, ``"sweep"``)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise error(f"{path}: no such {kind} file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {kind} file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {kind} file: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid TOML: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = " ".join(str(exc).split())
        raise error(f"{path}: not valid TOML: {msg}") from None
    return text, raw
