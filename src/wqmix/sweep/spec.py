"""Sweep specs: a base preset and fixed overrides, a grid and random distributions over any config
field, the seeds of every trial and the resources it needs. `load_spec` reads and validates a
whole spec against the typed config, without Ray and before anything is compiled; `expand`
resolves it into its trials (one validated `Config` each).

A spec (YAML or JSON):

    name: alpha-grid                 # a label (default: the file's stem)
    preset: matrix-game-paper        # the base config (default: `Config()`)
    overrides:                       # fixed fields, dotted or nested
      train.total_env_steps: 5000
    grid:                            # every combination of these values
      algo.alpha: [0.01, 0.1, 0.5]
      algo.name: [ow-qmix, cw-qmix]
    random:                          # `samples` draws per grid point
      samples: 4
      seed: 0                        # the draws are a function of this seed: a rerun gets the same trials
      space:
        optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
        exploration.epsilon_anneal_steps: {randint: [10000, 100000]}   # both ends included
        algo.name: {choice: [ow-qmix, cw-qmix]}
        algo.alpha: {uniform: [0.01, 0.75]}
    seeds: 5                         # seeds 0..4 of every trial, trained together (vmap); or {first: 10, count: 5}
    resources: {cpus: 1, gpus: 0}    # per trial; a GPU fraction such as 0.25 shares one GPU
    retries: 2                       # reruns of a trial whose worker process died (from its checkpoint)

Fields are applied as on the command line: `env.name` and `algo.name` first (they select an
environment and an algorithm at their defaults), then the other fields; fixed overrides first,
then the swept values.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from wqmix import config as cfg
from wqmix.errors import ConfigError

SPEC_KEYS = ("name", "preset", "overrides", "grid", "random", "seeds", "resources", "retries")
RANDOM_KEYS = ("samples", "seed", "space")
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
#: Reruns of a trial whose worker process died (not of one that raised a Python error). Ours.
DEFAULT_RETRIES = 2
#: Fields the spec sets through its own keys, not through overrides or the grid.
RESERVED_FIELDS = {"seed": "seeds", "num_seeds": "seeds"}


@dataclass(frozen=True)
class Resources:
    """What one trial asks of the Ray cluster."""

    cpus: float = 1.0
    """CPU cores reserved per trial (Ray `num_cpus`). Default: ours, one trial per core."""
    gpus: float = 0.0
    """GPUs per trial (Ray `num_gpus`); a fraction shares one GPU between trials, each JAX
    process then preallocating only that fraction of its memory. Default: ours (CPU)."""


@dataclass(frozen=True)
class Distribution:
    """A random search dimension: `choice` of values, `uniform` / `loguniform` floats in
    [low, high], `randint` integers in [low, high] (both ends included)."""

    kind: str
    args: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.args[int(rng.integers(len(self.args)))]
        low, high = self.args
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        if self.kind == "loguniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        return int(rng.integers(low, high, endpoint=True))


@dataclass(frozen=True)
class Trial:
    """One point of the sweep: an ordinary run of `config` (all its seeds, vmapped)."""

    id: str
    """trial-000, trial-001, ... in the order of the grid (last key fastest), then the samples."""
    params: dict[str, Any]
    """The swept fields (dotted, e.g. "algo.alpha") and this trial's values."""
    config: cfg.Config


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: cfg.Config
    """The preset with the fixed overrides and the seeds applied."""
    overrides: dict[str, Any]
    grid: dict[str, list[Any]]
    space: dict[str, Distribution]
    samples: int
    random_seed: int
    resources: Resources
    retries: int
    data: dict[str, Any]
    """The spec as read (kept in the manifest)."""

    @property
    def swept_fields(self) -> list[str]:
        return list(self.grid) + [k for k in self.space if k not in self.grid]


def params_label(params: Mapping[str, Any], skip: tuple[str, ...] = ("algo.name", "env.name")) -> str:
    """"algo.alpha=0.1, optim.lr=0.000316": a sweep trial's swept values, floats to 3 significant
    digits; `algo.name` and `env.name` are left out by default (tables give them columns)."""
    def fmt(value: Any) -> str:
        return value if isinstance(value, str) else f"{value:.3g}" if isinstance(value, float) else json.dumps(value)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items() if k not in skip)


def _fail(path: str, value: Any, valid: str) -> None:
    raise ConfigError(path, value, valid)


def _dotted(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key or key.startswith(".") or key.endswith("."):
        _fail(where, key, "keys are config fields such as algo.alpha")
    name = key.replace("-", "_")
    if name in RESERVED_FIELDS:
        _fail(f"{where}.{name}", key, f"set by the spec's `{RESERVED_FIELDS[name]}` key")
    return name


def _flatten(data: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """{"train": {"batch_size": 8}, "algo.alpha": 0.1} -> {"train.batch_size": 8, "algo.alpha": 0.1}."""
    if not isinstance(data, dict):
        _fail(where, data, "must be a mapping of config fields to values")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = _dotted(key, where)
        name = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            flat.update(_flatten(value, where, name))
        else:
            flat[name] = value
    return flat


def _count(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(path, value, f"must be an integer >= {minimum}")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(path, value, "must be a finite number")
    return value


def _distribution(value: Any, path: str) -> Distribution:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        _fail(path, value, "must be one of {choice: [v, ...]}, {uniform: [low, high]}, "
                           "{loguniform: [low, high]}, {randint: [low, high]}")
    kind, args = next(iter(value.items()))
    where = f"{path}.{kind}"
    if not isinstance(args, list) or not args:
        _fail(where, args, "must be a non-empty list")
    if kind == "choice":
        return Distribution(kind, tuple(args))
    if len(args) != 2:
        _fail(where, args, "must be [low, high]")
    low, high = (_number(a, where) for a in args)
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        _fail(where, args, "bounds must be integers")
    if low > high:
        _fail(where, args, "bounds are out of order: low must be <= high")
    if kind == "loguniform" and low <= 0:
        _fail(where, args, "bounds must be > 0 for a log-uniform draw")
    return Distribution(kind, (low, high))


def parse_spec(data: Any, name: str = "sweep") -> SweepSpec:
    """A validated `SweepSpec` from the spec's data. Raises ConfigError naming the spec field."""
    if not isinstance(data, dict):
        _fail("spec", data, "must be a mapping with keys " + ", ".join(SPEC_KEYS))
    for key in data:
        if key not in SPEC_KEYS:
            _fail(str(key), data[key], "unknown spec key; valid keys: " + ", ".join(SPEC_KEYS))
    label = data.get("name", name)
    if not isinstance(label, str) or not label:
        _fail("name", label, "must be a non-empty string")

    if "preset" in data and (not isinstance(data["preset"], str) or data["preset"] not in cfg.PRESETS):
        _fail("preset", data["preset"], "must be one of " + ", ".join(cfg.PRESETS))
    seeds = data.get("seeds", 1)
    if isinstance(seeds, dict):
        for key in seeds:
            if key not in ("first", "count"):
                _fail(f"seeds.{key}", seeds[key], "unknown key; valid keys: first, count")
        first, count = _count(seeds.get("first", 0), "seeds.first", 0), _count(seeds.get("count", 1), "seeds.count", 1)
    else:
        first, count = 0, _count(seeds, "seeds", 1)
    overrides = _flatten(data.get("overrides", {}), "overrides")
    base = cfg.resolve_config(preset=data.get("preset"), seed=first, num_seeds=count, fields=overrides,
                              where="overrides")

    grid: dict[str, list[Any]] = {}
    raw_grid = data.get("grid", {})
    if not isinstance(raw_grid, dict):
        _fail("grid", raw_grid, "must be a mapping of config fields to lists of values")
    for key, values in raw_grid.items():
        field = _dotted(key, "grid")
        if not isinstance(values, list) or not values:
            _fail(f"grid.{field}", values, "must be a non-empty list of values")
        for value in values:  # each value on its own, so the error names the grid entry
            cfg.with_fields(base, {field: value}, "grid")
        grid[field] = values

    space: dict[str, Distribution] = {}
    samples, random_seed = 1, 0
    if "random" in data:
        random = data["random"]
        if not isinstance(random, dict):
            _fail("random", random, "must be a mapping with keys " + ", ".join(RANDOM_KEYS))
        for key in random:
            if key not in RANDOM_KEYS:
                _fail(f"random.{key}", random[key], "unknown key; valid keys: " + ", ".join(RANDOM_KEYS))
        samples = _count(random.get("samples", 1), "random.samples", 1)
        random_seed = _count(random.get("seed", 0), "random.seed", 0)
        raw_space = random.get("space")
        if not isinstance(raw_space, dict) or not raw_space:
            _fail("random.space", raw_space, "must be a non-empty mapping of config fields to distributions")
        for key, value in raw_space.items():
            field = _dotted(key, "random.space")
            if field in grid:
                _fail(f"random.space.{field}", value, "is swept by the grid already")
            space[field] = _distribution(value, f"random.space.{field}")
            if space[field].kind == "choice":
                for choice in space[field].args:
                    cfg.with_fields(base, {field: choice}, "random.space")
            else:  # both bounds must be values of the field
                for bound in space[field].args:
                    cfg.with_fields(base, {field: bound}, "random.space")

    raw_resources = data.get("resources", {})
    if not isinstance(raw_resources, dict):
        _fail("resources", raw_resources, "must be a mapping with keys cpus, gpus")
    for key in raw_resources:
        if key not in ("cpus", "gpus"):
            _fail(f"resources.{key}", raw_resources[key], "unknown key; valid keys: cpus, gpus")
    cpus = _number(raw_resources.get("cpus", Resources.cpus), "resources.cpus")
    gpus = _number(raw_resources.get("gpus", Resources.gpus), "resources.gpus")
    if cpus <= 0:
        _fail("resources.cpus", cpus, "must be > 0")
    if gpus < 0 or (gpus > 1 and not float(gpus).is_integer()):
        _fail("resources.gpus", gpus, "must be >= 0: a fraction of one GPU or a whole number of GPUs")
    retries = _count(data.get("retries", DEFAULT_RETRIES), "retries", 0)
    spec = SweepSpec(name=label, base=base, overrides=overrides, grid=grid, space=space, samples=samples,
                     random_seed=random_seed, resources=Resources(float(cpus), float(gpus)), retries=retries,
                     data=json.loads(json.dumps(data)))
    expand(spec)  # every combination must make a valid config too (e.g. double_q with a central Q)
    return spec


def expand(spec: SweepSpec) -> list[Trial]:
    """The trials: every grid combination (last key fastest) times `samples` random draws, the
    draws a function of `random.seed` alone. Raises ConfigError naming the trial and the field."""
    rng = np.random.default_rng(spec.random_seed)
    combinations = list(itertools.product(*spec.grid.values())) if spec.grid else [()]
    trials = []
    for combination in combinations:
        for _ in range(spec.samples if spec.space else 1):
            params = dict(zip(spec.grid, combination))
            params.update({field: distribution.sample(rng) for field, distribution in spec.space.items()})
            trial_id = f"trial-{len(trials):03d}"
            config = cfg.with_fields(spec.base, params, trial_id)
            trials.append(Trial(trial_id, params, config))
    return trials


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.1 (PyYAML) reads `1e-4` as a string; here every float literal is a float."""


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$"),
    list("-+0123456789."))


def load_spec(path: str | Path) -> SweepSpec:
    """Read a YAML (.yaml, .yml) or JSON spec file and validate it (`parse_spec`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError("spec", str(path), f"must be a readable file ({e.strerror or e})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.load(text, Loader=_SpecLoader)
        except yaml.YAMLError as e:
            raise ConfigError("spec", str(path), f"must be valid YAML ({' '.join(str(e).split())})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError("spec", str(path), f"must be valid JSON ({e})") from None
    return parse_spec(data, name=path.stem)
