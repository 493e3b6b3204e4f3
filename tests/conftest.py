import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # tests/naive.py

#: the `cluster` fixture (a real single-node SLURM cluster) for test_slurm and test_sweep
pytest_plugins = ["slurm_cluster"]
