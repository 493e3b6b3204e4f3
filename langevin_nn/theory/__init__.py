"""Theory to compare measurements with: the mean-field signal propagation of deep random networks
(``langevin_nn.theory.meanfield``: q*, c*, chi_1, xi_q, xi_c, the order-to-chaos line, depth
profiles of the layer kernels)."""
from .meanfield import (MeanField, critical_line, critical_sigma_w2, kernel_profile, mean_field,
                        phase_grid, profile_summary)

__all__ = ["MeanField", "mean_field", "critical_sigma_w2", "critical_line", "kernel_profile",
           "profile_summary", "phase_grid"]
