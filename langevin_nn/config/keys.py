"""The constants of the TOML schema: the sections and their keys, the names each choice accepts,
the defaults of the widths and schedules, and the limits of the randomness contract."""
from __future__ import annotations

#: Keys left out of :attr:`Config.hash`: they change how a run is executed, not what it computes
#: (``steps`` is excluded so that an extended run keeps its hash).
HASH_EXCLUDED = ("ensemble.threads", "ensemble.steps", "ensemble.checkpoint_every", "ensemble.chunk")

ARCHITECTURES = ("dense", "local", "sft1", "sft2")
ACTIVATIONS = ("tanh", "sigmoid", "erf", "relu", "linear", "quadratic", "softplus", "identity")
#: Activations with coefficients: linear p x + q, quadratic p x^2 + q x + r.
ACTIVATION_PARAMS = {"linear": ("p", "q"), "quadratic": ("p", "q", "r")}
SOURCES = ("teacher", "file", "digits")
LOSSES = ("mse", "cross_entropy", "kl", "hinge")
REDUCTIONS = ("mean", "sum")
INTEGRATORS = ("overdamped", "underdamped", "heavy_ball")
SCHEDULE_KINDS = ("constant", "linear", "exponential", "piecewise")
SCHEDULE_UNITS = ("steps", "time")
DTYPES = ("float64", "float32")
MOMENTA = ("zero", "keep")
DATA_SUFFIXES = (".npz", ".h5", ".hdf5")

#: The bundled digits set (scikit-learn's 8x8 digits): inputs, classes, rows.
DIGITS_INPUTS, DIGITS_CLASSES, DIGITS_ROWS = 64, 10, 1797

#: Limits of the randomness contract (docs/architecture.md): steps < 2^48, replicas < 2^32.
MAX_STEPS = 2**48
MAX_REPLICAS = 2**32
MAX_SEED = 2**64

#: Which schedules each integrator uses (TOML names; ``lambda`` is ``DynamicsConfig.lam``).
INTEGRATOR_SCHEDULES = {
    "overdamped": ("eta", "T", "lambda"),
    "underdamped": ("dt", "gamma", "T", "lambda"),
    "heavy_ball": ("eta", "beta", "T", "lambda"),
}
SCHEDULE_NAMES = ("eta", "T", "dt", "gamma", "beta", "lambda")
SCHEDULE_DEFAULTS = {"eta": 1e-3, "T": 0.0, "dt": 1e-2, "gamma": 1.0, "beta": 0.9, "lambda": 0.0}

#: Shape keys of each architecture (everything else in [network] applies to all of them).
SHAPE_KEYS = ("widths", "width", "depth", "k", "tied")
ARCH_SHAPE_KEYS = {
    "dense": ("widths",),
    "local": ("width", "depth", "k", "tied"),
    "sft1": ("width",),
    "sft2": ("width",),
}
DEFAULT_WIDTHS = (8, 32, 32, 1)

#: The TOML schema: section -> known keys. Sub-tables are listed in ``_SUBTABLES``.
NETWORK_KEYS = (
    "architecture", "widths", "width", "depth", "k", "tied", "activation", "activation_params",
    "output_activation", "output_activation_params", "bias", "sigma_w2", "sigma_b2",
)
SCHEMA: dict[str, tuple[str, ...]] = {
    "network": NETWORK_KEYS,
    "data": ("source", "n_train", "online", "n_probe", "batch", "loss", "reduction",
             "label_noise", "path", "teacher"),
    "dynamics": ("integrator",) + SCHEDULE_NAMES + ("divergence_bound",),
    "ensemble": ("replicas", "seed", "steps", "dtype", "threads", "checkpoint_every", "chunk"),
    "recording": ("every", "train_loss", "norms", "snapshot_every", "probe_z_every",
                  "probe_z_dtype", "bbd"),
    "init": ("from", "at", "momenta", "replica"),
}
SCHEDULE_TABLE_KEYS = ("kind", "unit", "value", "start", "end", "begin", "until", "at", "values")
