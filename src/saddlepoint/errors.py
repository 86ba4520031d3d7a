"""Exceptions that the command line turns into exit codes (see CONTRACTS.md)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: arguments, config, data files or checkpoints. Exit code 2, one ``error:`` line."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration key, value or registry name is invalid."""


class DataError(UserError):
    """A data file or directory is missing, truncated or malformed."""


class CheckpointError(UserError):
    """A checkpoint is missing, truncated, malicious or of the wrong kind."""


class DivergenceError(Exception):
    """Training produced a non-finite loss, gradient or parameter. Exit code 3."""

    exit_code = 3

    def __init__(self, step: int, player: str, what: str) -> None:
        super().__init__(f"training diverged at step {step}: non-finite {what} for player {player}")
        self.step = step
        self.player = player
        self.what = what


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived during training; a checkpoint was written. Exit code 130."""

    exit_code = 130
