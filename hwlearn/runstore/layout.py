"""File names inside a run folder (docs/run-store.md describes each)."""

CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
DATABASE_FILE = "run.sqlite"
LOG_FILE = "log.txt"
CHECKPOINT_DIR = "checkpoints"
WRITER_LOCK_FILE = "writer.lock"

# The format of a run folder; bumped only when an older reader could misread a newer run.
RUN_FORMAT = "hwlearn.run/1"
