"""Execution backends: docker (production), local (trusted code only), fake (tests)."""

from runners.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    EnvironmentSpec,
    Limits,
    LiveTail,
    Mount,
    PreparedEnvironment,
    RunResult,
    RunSpec,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "EnvironmentSpec",
    "Limits",
    "LiveTail",
    "Mount",
    "PreparedEnvironment",
    "RunResult",
    "RunSpec",
]
