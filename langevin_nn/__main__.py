"""``python -m langevin_nn`` is the ``langevin-nn`` command."""
from .cli import main

main()
