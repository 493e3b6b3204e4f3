"""The [network] section (and the network of [data.teacher]): architecture, widths, activations."""
from __future__ import annotations

import dataclasses
import json

from ..errors import ConfigError
from .checks import _bool, _choice, _float, _int, _is_int, _show, _table
from .keys import (ACTIVATION_PARAMS, ACTIVATIONS, ARCH_SHAPE_KEYS, ARCHITECTURES, DEFAULT_WIDTHS,
                   SHAPE_KEYS)
from .model import ActivationSpec, NetworkConfig


def _network(prefix: str, t: dict) -> NetworkConfig:
    """[network] (or the merged [data.teacher] table, with prefix "data.teacher")."""
    def key(k: str) -> str:
        return f"{prefix}.{k}"

    arch = _choice(key("architecture"), t.get("architecture", "dense"), ARCHITECTURES)
    allowed = ARCH_SHAPE_KEYS[arch]
    for k in SHAPE_KEYS:
        if k in t and k not in allowed:
            if arch == "dense":
                hint = "dense takes widths = [N_0, ..., N_M]"
            elif arch == "local":
                hint = "local takes width, depth, k, tied"
            else:
                hint = f"{arch} takes width only"
            raise ConfigError(f"{key(k)}: not used by architecture {json.dumps(arch)} ({hint})")

    k_local, tied = 1, False
    if arch == "dense":
        widths = t.get("widths", DEFAULT_WIDTHS)
        if not (isinstance(widths, (list, tuple)) and len(widths) >= 2
                and all(_is_int(n) and n >= 1 for n in widths)):
            raise ConfigError(f"{key('widths')}: expected a list of at least 2 positive integers, "
                              f"got {_show(widths)}")
        widths = tuple(int(n) for n in widths)
    elif arch == "local":
        for k in ("width", "depth"):
            if k not in t:
                raise ConfigError(f"{key(k)}: required for architecture \"local\"")
        width = _int(key("width"), t["width"], lo=1)
        depth = _int(key("depth"), t["depth"], lo=1)
        k_local = _int(key("k"), t.get("k", 1), lo=0)
        if 2 * k_local + 1 > width:
            raise ConfigError(f"{key('k')}: fan-in 2k+1 = {2 * k_local + 1} exceeds "
                              f"{key('width')} = {width}")
        tied = _bool(key("tied"), t.get("tied", False))
        widths = (width,) * (depth + 1)
    else:
        if "width" not in t:
            raise ConfigError(f"{key('width')}: required for architecture {json.dumps(arch)}")
        width = _int(key("width"), t["width"], lo=2)
        widths = (width,) * (2 if arch == "sft1" else 3)

    if arch == "sft1":
        for k in ("activation", "activation_params"):
            if k in t:
                raise ConfigError(f"{key(k)}: sft1 has no hidden layer; its sigma (SFT Eq. 13) "
                                  f"is {key('output_activation')}")
        activation = ActivationSpec("tanh")  # unused: no hidden layer
    else:
        default = ActivationSpec("quadratic", 1.0, 1.0, 1.0) if arch == "sft2" else ActivationSpec("tanh")
        activation = _activation(prefix, t, "activation", default)
    out_default = ActivationSpec("linear", 1.0, 0.0) if arch == "sft1" else ActivationSpec("identity")
    output_activation = _activation(prefix, t, "output_activation", out_default)

    bias = _bool(key("bias"), t.get("bias", arch in ("dense", "local")))
    sigma_w2 = _float(key("sigma_w2"), t.get("sigma_w2", 1.0), gt=0)
    sigma_b2 = _float(key("sigma_b2"), t.get("sigma_b2", 0.0), ge=0)
    if not bias and sigma_b2 > 0:
        raise ConfigError(f"{key('sigma_b2')}: {sigma_b2!r} given but {key('bias')} = false")
    return NetworkConfig(arch, widths, k_local, tied, activation, output_activation, bias,
                         sigma_w2, sigma_b2)


def _activation(prefix: str, t: dict, name_key: str, default: ActivationSpec) -> ActivationSpec:
    """``activation`` + ``activation_params`` (or the output pair) -> ActivationSpec.

    Without the name key the architecture's default (with its coefficients) is the base;
    with it, ActivationSpec's defaults (p = 1, q = r = 0). The params table updates the base.
    """
    key = f"{prefix}.{name_key}"
    pkey = f"{key}_params"
    if name_key in t:
        spec = ActivationSpec(_choice(key, t[name_key], ACTIVATIONS))
    else:
        spec = default
    if f"{name_key}_params" not in t:
        return spec
    params = _table(pkey, t[f"{name_key}_params"])
    if spec.name not in ACTIVATION_PARAMS:
        raise ConfigError(f"{pkey}: only for linear or quadratic activations, "
                          f"{key} is {json.dumps(spec.name)}")
    names = ACTIVATION_PARAMS[spec.name]
    for k in params:
        if k not in names:
            raise ConfigError(f"{pkey}.{k}: unknown key for {spec.name} (known: {', '.join(names)})")
    spec = dataclasses.replace(spec, **{k: _float(f"{pkey}.{k}", v) for k, v in params.items()})
    if spec.name == "linear" and spec.p == 0:
        raise ConfigError(f"{pkey}.p: a linear activation needs p != 0 (p = 0 is a constant)")
    if spec.name == "quadratic" and spec.p == 0 and spec.q == 0:
        raise ConfigError(f"{pkey}: a quadratic activation needs p or q != 0 (else a constant)")
    return spec
