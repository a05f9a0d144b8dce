"""The resolved experiment config as TOML text (written with tomli-w, read with tomllib)."""

from __future__ import annotations

import datetime as dt
import tomllib

import numpy as np

from hwlearn.runstore.errors import RunStoreError

_TOML_SCALARS = (str, bool, int, float, dt.datetime, dt.date, dt.time)


def _plain(value, path: str):
    """numpy values become Python ones; anything TOML cannot hold raises, naming its key."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise RunStoreError(f"config key {path + '.' if path else ''}{key!r} is a "
                                    f"{type(key).__name__}; TOML keys are strings")
            out[key] = _plain(item, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _TOML_SCALARS):
        return value
    what = "None (TOML has no null; leave the key out)" if value is None else f"a {type(value).__name__}"
    raise RunStoreError(f"config value {path or '<root>'} is {what}; TOML holds strings, numbers, "
                        "booleans, dates, lists and tables")


def config_to_toml(config: dict) -> str:
    import tomli_w  # a run writer needs it, a reader does not

    if not isinstance(config, dict):
        raise RunStoreError(f"config must be a dict, got {type(config).__name__}")
    return tomli_w.dumps(_plain(config, ""))


def config_from_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RunStoreError(f"{where}: stored config is not valid TOML: {exc}") from None
