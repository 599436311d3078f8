"""Training failures that a person can act on; each maps to a process exit code."""

from __future__ import annotations


class TrainingError(Exception):
    """A training run that must not produce a model."""

    exit_code = 1


class NotebookFailed(TrainingError):
    """A notebook cell raised, or the kernel died or timed out."""

    exit_code = 2


class MissingVariables(TrainingError):
    """The notebook ran but did not leave the variables the convention asks for."""

    exit_code = 3


class ModelCheckFailed(TrainingError):
    """The model is not a usable classifier, or it is not good enough to ship."""

    exit_code = 4


class Stopped(TrainingError):
    """The run was stopped from outside (SIGTERM or Ctrl+C) before it saved anything."""

    exit_code = 128 + 15  # the shell's convention for "terminated by SIGTERM"
