"""Estimators on ensemble files, each returning value, error and (for time averages) tau_int.

    errors        Estimate; jackknife / bootstrap over replicas; tau_int (Gamma method, Sokal)
    kernels       layer kernels q^(m), c^(m) on the probe set
    correlations  G_O(m, m'), C(m, m', dy) of z / W / D W, structure factor, linear CKA
    symmetry      the translation test along depth (Hotelling T^2, max deviation), bulk window
    order         xi fits, xi_eff, xi against time, the long-range-order verdict
    chi           the measured chi_1 / chi_c and the critical sigma_w^2 from several files
    ntk           the empirical NTK and its drift
    report        the ``langevin-nn analyze`` pipeline (JSON, CSV, Markdown, figures)
    forward       the stored network in NumPy (forward pass, link gains, NTK)
    files         reading helpers: the recording switch behind every dataset

Conventions and formulas: docs/analysis.md. tau_int = 1/2 + sum rho (Wolff, pyerrors); emcee's
``integrated_time`` is twice that. Files are read lazily, in replica blocks.
"""
from .chi import Chi1, CriticalPoint, critical_point, measure_chi1
from .correlations import (cka, connected_two_point, depth_two_point, field_correlator,
                           field_two_point, structure_factor, translation_average)
from .errors import (Estimate, bootstrap, jackknife, jackknife_of_means, propagate, tau_int,
                     time_average)
from .kernels import LayerKernels, layer_kernels
from .ntk import NTKDrift, ntk_drift
from .order import (CorrelationFit, fit_correlation_length, long_range_order, xi_effective,
                    xi_from_profile, xi_vs_time)
from .report import analyze
from .symmetry import SymmetryTest, find_bulk_window, translation_test, translation_test_layers

__all__ = [
    "Estimate", "jackknife", "jackknife_of_means", "bootstrap", "propagate", "tau_int",
    "time_average", "LayerKernels", "layer_kernels", "connected_two_point", "depth_two_point",
    "translation_average", "field_two_point", "field_correlator", "structure_factor", "cka",
    "SymmetryTest", "translation_test", "translation_test_layers", "find_bulk_window",
    "CorrelationFit", "fit_correlation_length", "xi_effective", "xi_vs_time", "long_range_order",
    "xi_from_profile", "Chi1", "measure_chi1", "CriticalPoint", "critical_point", "NTKDrift",
    "ntk_drift", "analyze",
]
