"""Validation of a whole config: types first, then ranges, then combinations. `validate` raises
`ConfigError` whose message is one line naming the field, the bad value and what would be valid."""

from __future__ import annotations

import dataclasses
from typing import Any

from wqmix.config.algorithms import AlgoConfig, ProjectorConfig, QattenConfig, QplexConfig, QtranConfig
from wqmix.config.sections import Config
from wqmix.config.typecheck import _check_type, field_types, _join
from wqmix.envs.registry import ENV_CONFIGS
from wqmix.errors import ConfigError


def _checked_section(section: Any, path: str) -> Any:
    """A copy of a dataclass section whose every field has been type-checked (and normalised)."""
    values = {}
    for name, annotation in field_types(type(section)).items():
        value = getattr(section, name)
        if dataclasses.is_dataclass(value):
            values[name] = _checked_section(value, _join(path, name))
        else:
            values[name] = _check_type(value, annotation, _join(path, name))
    return dataclasses.replace(section, **values)


def _require(ok: bool, path: str, value: Any, valid: str) -> None:
    if not ok:
        raise ConfigError(path, value, valid)


def _positive(section: Any, path: str, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        _require(value > 0, _join(path, name), value, "must be > 0")


def _unit_interval(section: Any, path: str, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        _require(0.0 <= value <= 1.0, _join(path, name), value, "must be in [0, 1]")


def validate(config: Config) -> Config:
    """Check every field of `config`; return it normalised (ints in float fields become floats,
    lists become tuples). Raises `ConfigError` with a one-line message."""
    if not isinstance(config.env, tuple(ENV_CONFIGS.values())):
        raise ConfigError("env", config.env, "must be one of " + ", ".join(ENV_CONFIGS))
    config = _checked_section(config, "")

    algo = config.algo
    _require(0.0 < algo.alpha <= 1.0, "algo.alpha", algo.alpha, "must be in (0, 1]")
    _unit_interval(algo, "algo", "gamma", "td_lambda")
    _require(algo.qmix_loss_coef >= 0, "algo.qmix_loss_coef", algo.qmix_loss_coef, "must be >= 0")
    _require(algo.central_loss_coef >= 0, "algo.central_loss_coef", algo.central_loss_coef, "must be >= 0")
    _positive(algo, "algo", "target_update_interval")
    _validate_projector(algo)
    _validate_qplex(algo)
    _validate_qtran(algo)
    _validate_qatten(algo, config.train.packed_rows)
    if algo.central_mixer != "ff":
        _require(algo.central, "algo.central_mixer", algo.central_mixer,
                 "is Q-hat*'s mixer, but algo.central is false (use --algo ow-qmix-atten or cw-qmix-atten)")
    if algo.weighting == "cw":  # without Q-hat*, the value of the greedy action is the target mixer's
        _require(algo.mixer != "none", "algo.weighting", algo.weighting,
                 "CW weighting needs a mixer (Q_tot at the greedy joint action): set algo.mixer to 'qmix' or "
                 "'vdn', or use weighting 'ow' or 'none'")
    if algo.central:
        _require(algo.mixer != "none", "algo.central", algo.central,
                 "the central estimator needs a mixer: set algo.mixer to 'qmix' or 'vdn', or algo.central false")
        _require(algo.central_loss_coef > 0, "algo.central_loss_coef", algo.central_loss_coef,
                 "must be > 0 when algo.central is true (Q-hat* would never learn)")
        _require(algo.double_q, "algo.double_q", algo.double_q,
                 "must be true when algo.central is true (the paper values online QMIX's greedy action with Q-hat*)")

    _require(0.0 < algo.tau <= 1.0, "algo.tau", algo.tau, "must be in (0, 1]")

    _positive(config.network, "network", "agent_hidden", "mixer_embed", "hypernet_embed",
              "central_agent_hidden", "central_mixer_hidden")
    _positive(config.train, "train", "total_env_steps", "num_envs", "updates_per_iteration",
              "batch_size", "buffer_size")
    _require(config.train.buffer_size >= config.train.batch_size, "train.buffer_size",
             config.train.buffer_size, f"must be >= train.batch_size ({config.train.batch_size})")
    _positive(config.train, "train", "stream_window")
    _require(config.train.env_workers >= 0, "train.env_workers", config.train.env_workers,
             "must be >= 0 (0: step host envs in this process)")
    rows = config.train.packed_rows
    _require(all(r > 0 for r in rows) and list(rows) == sorted(set(rows)), "train.packed_rows", list(rows),
             "must be increasing row counts > 0, e.g. [12, 16, 24], or [] for off")
    _unit_interval(config.exploration, "exploration", "epsilon_start", "epsilon_finish")
    _require(config.exploration.epsilon_anneal_steps >= 0, "exploration.epsilon_anneal_steps",
             config.exploration.epsilon_anneal_steps, "must be >= 0")
    _positive(config.optim, "optim", "lr", "eps", "grad_norm_clip")
    _require(config.optim.weight_decay >= 0, "optim.weight_decay", config.optim.weight_decay, "must be >= 0")
    _require(0.0 <= config.optim.rmsprop_decay < 1.0, "optim.rmsprop_decay",
             config.optim.rmsprop_decay, "must be in [0, 1)")
    _positive(config.log, "log", "num_chunks", "test_episodes", "keep_checkpoints")
    _require(config.log.test_interval >= 0, "log.test_interval", config.log.test_interval,
             "must be >= 0 (0: test after every chunk)")
    _require(config.log.checkpoint_interval >= 0, "log.checkpoint_interval", config.log.checkpoint_interval,
             "must be >= 0")
    _require(config.seed >= 0, "seed", config.seed, "must be >= 0")
    _positive(config, "", "num_seeds")
    config.env.validate("env")
    return config


def _validate_projector(algo: AlgoConfig) -> None:
    p, path = algo.projector, "algo.projector"
    if p.kind == "none":  # a projector option set on an algorithm without a projector
        for name, default in _field_defaults(ProjectorConfig).items():
            if name != "kind" and getattr(p, name) != default:
                raise ConfigError(f"{path}.{name}", getattr(p, name),
                                  f"is a projector option, but {path}.kind is 'none' (set it to 'state' or "
                                  "'state-action', or use --algo projector-qmix)")
        return
    _require(algo.mixer == "qmix", "algo.mixer", algo.mixer,
             f"must be 'qmix' with a projector ({path}.kind {p.kind!r}): Q_mono is the QMIX mixer")
    _require(not algo.central, "algo.central", algo.central,
             f"must be false with a projector ({path}.kind {p.kind!r}): the projector write-up's targets come from its own networks")
    _require(algo.td_lambda == 0.0, "algo.td_lambda", algo.td_lambda,
             "must be 0 with a projector (the write-up's targets are one-step)")
    _positive(p, path, "heads", "value_samples", "advantage_rate")
    _require(p.advantage_rate <= 1.0, f"{path}.advantage_rate", p.advantage_rate, "must be in (0, 1]")
    _require(p.omega_value >= 0, f"{path}.omega_value", p.omega_value, "must be >= 0")
    _require(p.l2 >= 0, f"{path}.l2", p.l2, "must be >= 0")
    for name in ("omega_anneal_steps", "last_layer_init", "clip", "lr"):
        value = getattr(p, name)
        _require(value is None or value > 0, f"{path}.{name}", value, "must be > 0, or null for off")


def _validate_qplex(algo: AlgoConfig) -> None:
    q, path = algo.qplex, "algo.qplex"
    if not _refuse_options_without_mixer(algo, "qplex", QplexConfig, "dmaq", "QPLEX"):
        return
    _require(not algo.central, "algo.central", algo.central,
             "must be false with algo.mixer 'dmaq' (QPLEX bootstraps from its own target networks)")
    _require(algo.weighting in ("none", "ow"), "algo.weighting", algo.weighting,
             "must be 'none' or 'ow' with algo.mixer 'dmaq' (CW reads a target Q_tot at the greedy action that "
             "QPLEX's target does not give)")
    _positive(q, path, "num_kernel", "adv_hypernet_embed")
    _require(q.adv_hypernet_layers in (1, 2, 3), f"{path}.adv_hypernet_layers", q.adv_hypernet_layers,
             "must be 1, 2 or 3 (official DMAQ_SI_Weight)")


def _refuse_options_without_mixer(algo: AlgoConfig, section: str, cls: type, mixer: str, algo_name: str) -> bool:
    """Raise if an option of `section` (`cls`) differs from its default while `algo.mixer` is not
    `mixer`; return whether the mixer is in use."""
    if algo.mixer == mixer:
        return True
    for name, default in _field_defaults(cls).items():
        value = getattr(getattr(algo, section), name)
        if value != default:
            raise ConfigError(f"algo.{section}.{name}", value,
                              f"is a {algo_name} option, but algo.mixer is not '{mixer}' (use --algo {section})")
    return False


def _own_targets_only(algo: AlgoConfig, name: str) -> None:
    """The factorisations that bootstrap from their own target networks with the plain TD loss."""
    _require(not algo.central, "algo.central", algo.central,
             f"must be false with algo.mixer '{algo.mixer}' ({name} bootstraps from its own target networks)")
    _require(algo.weighting == "none", "algo.weighting", algo.weighting,
             f"must be 'none' with algo.mixer '{algo.mixer}' ({name}'s loss is unweighted)")


def _validate_qtran(algo: AlgoConfig) -> None:
    if not _refuse_options_without_mixer(algo, "qtran", QtranConfig, "qtran", "QTRAN"):
        return
    _own_targets_only(algo, "QTRAN")
    _positive(algo.qtran, "algo.qtran", "embed")
    for name in ("opt_loss", "nopt_min_loss"):
        _require(getattr(algo.qtran, name) >= 0, f"algo.qtran.{name}", getattr(algo.qtran, name), "must be >= 0")


def _validate_qatten(algo: AlgoConfig, packed_rows: tuple[int, ...]) -> None:
    if not _refuse_options_without_mixer(algo, "qatten", QattenConfig, "qatten", "Qatten"):
        return
    q = algo.qatten
    _own_targets_only(algo, "Qatten")
    _positive(q, "algo.qatten", "n_head", "embed")
    _require(q.attend_reg_coef >= 0, "algo.qatten.attend_reg_coef", q.attend_reg_coef, "must be >= 0")
    _require(q.hypernet_layers in (1, 2), "algo.qatten.hypernet_layers", q.hypernet_layers,
             "must be 1 or 2 (official QattenMixer)")
    _require(q.unit_dim is None or q.unit_dim > 0, "algo.qatten.unit_dim", q.unit_dim,
             "must be > 0, or null for state_dim // agents")
    _require(not packed_rows, "train.packed_rows", list(packed_rows),
             "must be [] with algo.mixer 'qatten' (its attention regulariser averages over the batch's "
             "padded rows, as the official code does, so packing episodes into rows would change the loss)")


def _field_defaults(cls: type) -> dict[str, Any]:
    instance = cls()
    return {f.name: getattr(instance, f.name) for f in dataclasses.fields(cls)}
