"""The shipped example configs: the package copy and runs/ agree, and every runs/*.toml loads."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from langevin_nn.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_copy_in_runs_is_the_package_example():
    pkg = (resources.files("langevin_nn") / "examples" / "quickstart.toml").read_text()
    assert (ROOT / "runs" / "quickstart.toml").read_text() == pkg


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "runs").glob("*.toml")
                                        if not p.name.startswith("sweep")))
def test_run_configs_load(path):
    cfg = load_config(ROOT / "runs" / path)
    assert cfg.ensemble.replicas >= 1
