"""The integrators and their schedules, as the kernels see them (physics.md section 3).

    overdamped   theta_{s+1} = theta_s - eta grad l_B + sqrt(2 eta T) xi          dt = eta
    underdamped  BAOAB for d theta = p dt, dp = -grad l dt - gamma p dt + sqrt(2 gamma T) dB,
                 one gradient per step                                             dt = h
    heavy_ball   v <- beta v - eta grad l + sqrt(2 (1 - beta) eta T) xi; theta += v    dt = sqrt(eta),
                 friction gamma = (1 - beta) / sqrt(eta), momentum p = v / sqrt(eta)

l includes the prior lambda/2 |theta|^2. Time t = sum of dt over steps is recorded. eta, T, dt,
gamma, beta and lambda may each follow a schedule (constant, linear, exponential, piecewise) in
steps or in time; ``schedule_table`` evaluates them step by step in one sequential pass.
"""
from __future__ import annotations

import numpy as np

from .kernels.ensemble import (
    BETA, DT, ETA, GAMMA, HEAVY_BALL, LAM, OVERDAMPED, TEMP, UNDERDAMPED, schedule_table,
)

INTEGRATORS = {"overdamped": OVERDAMPED, "underdamped": UNDERDAMPED, "heavy_ball": HEAVY_BALL}
_KINDS = {"constant": 0, "linear": 1, "exponential": 2, "piecewise": 3}
_UNITS = {"steps": 0, "time": 1}
#: row of the schedule table -> DynamicsConfig attribute
ROWS = {ETA: "eta", TEMP: "T", GAMMA: "gamma", BETA: "beta", LAM: "lam", DT: "dt"}


class Schedules:
    """The six schedules of a ``DynamicsConfig`` packed into arrays for ``schedule_table``."""

    def __init__(self, dyn):
        self.integ = INTEGRATORS[dyn.integrator]
        scheds = [getattr(dyn, ROWS[q]) for q in range(6)]
        A = max([len(s.at) for s in scheds] + [1])
        self.kinds = np.array([_KINDS[s.kind] for s in scheds], np.int64)
        self.units = np.array([_UNITS[s.unit] for s in scheds], np.int64)
        self.prm = np.zeros((6, 4))
        self.at = np.zeros((6, A))
        self.vals = np.zeros((6, A + 1))
        self.nat = np.zeros(6, np.int64)
        for q, s in enumerate(scheds):
            if s.kind in ("linear", "exponential"):
                self.prm[q] = (s.start, s.end, s.begin, s.until)
            else:
                self.nat[q] = len(s.at)
                self.at[q, : len(s.at)] = s.at
                self.vals[q, : len(s.values)] = s.values

    def table(self, s0: int, n: int, t0: float) -> tuple[np.ndarray, np.ndarray]:
        """Values (6, n + 1) at steps s0 .. s0 + n and times (n + 2,): t at s0 .. s0 + n + 1."""
        out = np.empty((6, n + 1))
        times = np.empty(n + 2)
        schedule_table(self.kinds, self.units, self.prm, self.at, self.vals, self.nat,
                       self.integ, s0, n, float(t0), out, times)
        return out, times
