"""Configuration files: a declarative validator and the experiment schema."""

from hwlearn.config.experiment import EXPERIMENT, load_experiment, resolve
from hwlearn.config.schema import describe_schema, load_toml

__all__ = ["EXPERIMENT", "describe_schema", "load_experiment", "load_toml", "resolve"]
