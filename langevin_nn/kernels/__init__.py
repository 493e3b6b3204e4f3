"""Numba kernels: leaves of the package. They see arrays and scalars only, never a config
object or a file, and never seed a global generator (randomness is Philox, keyed by
(seed, stream, replica, step, counter))."""
