"""langevin_nn: Langevin and noisy-SGD ensembles of neural networks, computed by Numba kernels,
stored in self-describing HDF5 files, with the bulk-boundary decomposition and synaptic field
theory of the two papers behind the project.

Public API: ``load_config``, ``run``, ``open_ensemble``, ``__version__``.
"""
from __future__ import annotations


def __getattr__(name):
    """``__version__``, looked up on first use: importlib.metadata costs 50 ms, which every
    ``python -m langevin_nn`` would otherwise spend before it can handle a stop signal."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("langevin_nn")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"


def load_config(source, overrides=(), **shortcuts):
    """Load and validate a config (a TOML path or a dict); see ``langevin_nn.config``."""
    from .config import load_config as _load

    return _load(source, overrides, **shortcuts)


def open_ensemble(path):
    """Open an ensemble file as a lazy reader; see ``langevin_nn.store.Ensemble``."""
    from .store import open_ensemble as _open

    return _open(path)


def run(config, output=None, *, overwrite=False, progress=None, writer=None):
    """Run the ensemble of ``config`` (a ``Config``, a TOML path or a dict) into ``output``
    (an HDF5 path) or ``writer`` (e.g. ``store.MemoryWriter``); returns a ``RunResult``."""
    from .config import Config
    from .simulate import run as _run

    cfg = config if isinstance(config, Config) else load_config(config)
    return _run(cfg, output, overwrite=overwrite, progress=progress, writer=writer)


__all__ = ["load_config", "run", "open_ensemble", "__version__"]
