"""`resolve_config`: the one way a run's config is put together from its parts, as `wqmix train`,
`wqmix sweep` and `wqmix reproduce` name them.

The order is fixed: whole sections first, then single fields, the later winning:
1. the base: a preset (`--preset`), else the env's default (`--env NAME`: its preset, or the official
   defaults), else `Config()`;
2. a config file (`--config FILE`, JSON such as a run's config.json) or its data, over the base;
3. the environment (`--env NAME`, at its defaults) and the algorithm (`--algo NAME`: its defining
   fields, optimiser and official settings);
4. the seed and the number of seeds;
5. dotted fields with JSON values (a sweep spec's `overrides`), applied as `from_dict` applies them
   (`env.name` and `algo.name` first) and validated, an error naming the field as `WHERE.FIELD`;
6. command-line overrides, `(dotted, text)` pairs in order (`--SECTION.FIELD VALUE`);
7. validation (`validate`), unless asked not to (`wqmix train --help` shows a config as given).

Every error is a `ConfigError` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from wqmix.config.parsing import apply_override, from_dict, with_fields
from wqmix.config.presets import env_default, with_algo, with_env
from wqmix.config.presets import preset as named_preset
from wqmix.config.sections import Config
from wqmix.config.validation import validate
from wqmix.errors import ConfigError


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The JSON object in a config file. Raises ConfigError naming `config` when it cannot be read."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("config", str(path), f"must be a readable JSON file ({e})") from None


def resolve_config(*, preset: str | None = None, config_file: str | Path | None = None,
                   config_data: Any = None, env: str | None = None, algo: str | None = None,
                   seed: int | str | None = None, num_seeds: int | str | None = None,
                   fields: Mapping[str, Any] | None = None, where: str = "",
                   overrides: Iterable[tuple[str, str]] = (), check: bool = True) -> Config:
    """The config of a run, built in the order of this module's docstring.

    `config_file` is read as JSON (`config_data` gives its data directly, a JSON object; not both). `seed` and
    `num_seeds` are ints, or command-line text that is parsed as `--seed TEXT` is. `fields` are
    dotted fields with JSON values (`with_fields`, errors named `where.FIELD`); `overrides` are
    `(dotted, text)` command-line pairs (`apply_override`). `check=False` skips the final
    validation (the fields steps validate what they set). Raises ConfigError."""
    if config_file is not None and config_data is not None:
        raise TypeError("give config_file or config_data, not both")
    if preset is not None:
        config = named_preset(preset)
    elif env is not None:
        config = env_default(env)
    else:
        config = Config()
    if config_file is not None:
        config_data = read_config_file(config_file)
    if config_data is not None:
        config = from_dict(config_data, base=config)
    if env is not None:
        config = with_env(config, env)
    if algo is not None:
        config = with_algo(config, algo)
    for name, value in (("seed", seed), ("num_seeds", num_seeds)):
        if isinstance(value, str):
            config = apply_override(config, name, value)
        elif value is not None:
            config = dataclasses.replace(config, **{name: value})
    if fields is not None:
        config = with_fields(config, dict(fields), where)
    for dotted, text in overrides:
        config = apply_override(config, dotted, text)
    return validate(config) if check else config
