"""Synaptic field theory (SFT Eqs. 11-19; physics.md section 5): couplings of the weight field
and its Gaussian two-point function under overdamped Langevin dynamics.

The cost is the one the dynamics descends, C = s sum_p l(Z(theta, X_p), Y_p) + lambda/2 |theta|^2
over the full training set (``cost`` gives the definition and units). What is computed, and
where (docs/sft.md gives every formula with its paper equation):

* ``cost``: :class:`TrainingCost` -- C, its exact gradient and its exact (analytic, R-operator)
  Hessian at any theta; :func:`training_cost` (the cost of a configuration), :func:`is_quadratic`.
* ``fields``: :func:`lattice_fields` -- the synaptic fields: one per weight block (``w_1`` ..
  ``w_M``) and bias block (``b_1`` ..), each a periodic chain of sites in the layout's site order
  (``langevin_nn.bulk.networks``: the papers' order for sft1/sft2); :class:`Field`,
  :func:`field_by_name`.
* ``couplings``: :func:`field_couplings` -- J_i, K_i of SFT Eq. 14 from a field's Hessian block,
  the springs of longer range and the residual beyond nearest neighbours; J(x), K(x) of Eq. 17;
  :func:`hessian_from_couplings`, and :func:`pair_couplings` between fields (Eq. 19).
* ``expansion``: :func:`expand` -- the expansion about a reference point (Eq. 11): C0, the source
  J_1 (gradient), J_2 = H / 2 organised by field pair, lattice offset and spatial derivative
  order (Eq. 19), the mass of each field, and the shift W* (minimum of the quadratic model).
* ``ensembles``: :func:`reference_point` (theta0: zero, init or an ensemble file) and
  :func:`ensemble_samples` (the samples of an ensemble file).
* ``closed_forms``: :func:`sft1_closed_form`, :func:`sft2_closed_form_at_zero` -- the closed forms
  of SFT example 1 (Eq. 13) and of example 2 (Eq. 18) at W = 0.
* ``covariance``: :func:`predicted_covariance` -- the stationary synaptic covariance of the
  overdamped chain (discrete Lyapunov equation); :func:`continuum_covariance`,
  :func:`dynamics_covariance` (the law of each integrator).
* ``two_point``: :func:`two_point_by_distance`, :func:`measured_two_point`,
  :func:`compare_two_point` -- C(d) from a covariance, measured C(d) with a jackknife over
  replicas, and the chi^2.
* ``output``: :func:`write_json`, :func:`write_h5`.
"""
from __future__ import annotations

from .closed_forms import sft1_closed_form, sft2_closed_form_at_zero
from .cost import TrainingCost, is_quadratic, training_cost
from .couplings import (FieldCouplings, PairCouplings, field_couplings, hessian_from_couplings,
                        pair_couplings)
from .covariance import continuum_covariance, dynamics_covariance, predicted_covariance
from .ensembles import ensemble_samples, reference_point
from .expansion import Expansion, expand
from .fields import Field, field_by_name, lattice_fields
from .output import write_h5 as write_h5, write_json as write_json  # used by cli_sft
from .two_point import (Comparison, TwoPoint, compare_two_point, measured_two_point,
                        two_point_by_distance)

__all__ = [
    "TrainingCost", "training_cost", "is_quadratic", "Field", "lattice_fields", "field_by_name",
    "FieldCouplings", "field_couplings", "hessian_from_couplings", "PairCouplings",
    "pair_couplings", "Expansion", "expand", "reference_point", "sft1_closed_form",
    "sft2_closed_form_at_zero", "predicted_covariance", "continuum_covariance",
    "dynamics_covariance", "two_point_by_distance", "TwoPoint", "measured_two_point",
    "Comparison", "compare_two_point", "ensemble_samples",
]
