"""The flyray exception tree, split by where things fail rather than by backend.

    FlyrayError
    ├── ConfigError             bad configuration: names the field path, the value and the rule
    │   ├── PluginNotFoundError no task plugin is registered for a plugin_config's type
    │   └── TaskLoadError       a task could not be found or loaded from a file or module
    ├── ManifestError           a configuration that cannot be rendered for the target
    ├── RunStoreError           a run's record, data or code bundle cannot be stored or read
    ├── SandboxError            ``flyray sandbox`` cannot start here, did not start or stop
    ├── SubmissionError         a cluster could not be reached, authenticated or started
    │   ├── NodeStartError      a node of a local cluster did not come up: names it and its log
    │   ├── ClusterLostError    a node of a local cluster died while a run used it
    │   └── RayClusterError     a Ray cluster's Jobs API or Ray Client failed a call
    │       ├── ClusterUnreachableError  nothing answered (refused, timed out, unknown host)
    │       ├── ClusterAuthError         the token was missing or refused (.token_sent)
    │       ├── RayJobNotFoundError      the cluster has no such job (restarted, or job deleted)
    │       ├── ClusterServerError       the cluster answered with a server error (5xx)
    │       └── VersionSkewError         the cluster's Ray or Python differs from this one's
    └── BaseRuntimeError        Flyte's names (``flyte.errors``): .code, .kind, .worker
        ├── RuntimeUserError    the user's code or configuration failed
        │   ├── TaskError       the task ran elsewhere and failed: run id, remote traceback, logs
        │   │   ├── TaskTimeoutError  the task ran longer than its timeout
        │   │   └── RuntimeEnvSetupError  Ray could not build the runtime env (pip failed)
        │   ├── BadConfigurationError  settings that cannot go together (also a ConfigError)
        │   └── NonRecoverableError, RetriesExhaustedError, OOMError, CustomError, ...
        ├── RuntimeSystemError
        └── RuntimeUnknownError

In ``local`` mode the task runs in the caller's process: its own exception reaches the caller
as an instance of its own type that is also a ``RuntimeUserError`` (``code`` is the type's
name), so both ``except ValueError`` and Flyte's ``except RuntimeUserError`` catch it.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

__all__ = [
    "BadConfigurationError",
    "BaseRuntimeError",
    "ClusterAuthError",
    "ClusterLostError",
    "ClusterServerError",
    "ClusterUnreachableError",
    "ConfigError",
    "CustomError",
    "FlyrayError",
    "ImagePullBackOffError",
    "InitializationError",
    "ManifestError",
    "ModuleLoadError",
    "NodeStartError",
    "NonRecoverableError",
    "OOMError",
    "PluginNotFoundError",
    "RayClusterError",
    "RayJobNotFoundError",
    "RetriesExhaustedError",
    "RunStoreError",
    "RuntimeEnvSetupError",
    "RuntimeSystemError",
    "RuntimeUnknownError",
    "RuntimeUserError",
    "SandboxError",
    "SubmissionError",
    "TaskError",
    "TaskInterruptedError",
    "TaskLoadError",
    "TaskTimeoutError",
    "VersionSkewError",
    "as_user_error",
    "is_task_error_copy",
]

ErrorKind = Literal["system", "unknown", "user"]


class FlyrayError(Exception):
    """Root of every error flyray raises on purpose."""


class ConfigError(FlyrayError, ValueError):
    """A configuration value breaks a rule; keeps the field path, the value and the rule."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field} {rule}; got {value!r}")


class PluginNotFoundError(ConfigError):
    """No plugin is registered for the type of an environment's ``plugin_config``."""


class TaskLoadError(ConfigError):
    """A task could not be loaded from the file or module the user named."""


class ManifestError(FlyrayError):
    """A valid configuration that cannot be expressed for the chosen target."""


class RunStoreError(FlyrayError):
    """A run's record, inputs, outputs or code bundle cannot be written or read back.

    The message names the run and the store, and says what to do (e.g. `flyray runs list`).
    """


class SandboxError(FlyrayError):
    """The sandbox (``flyray sandbox``) cannot start here, did not start, or did not stop."""


class SubmissionError(FlyrayError):
    """Flyray could not reach, authenticate with or start the cluster it was asked to use."""


class NodeStartError(SubmissionError, RuntimeError):
    """A Ray node of a local cluster did not come up; the message names it and its log file."""


class ClusterLostError(SubmissionError):
    """A node of a local cluster died while a run used it; the message names the node."""


class RayClusterError(SubmissionError):
    """A Ray cluster's Jobs API, dashboard or Ray Client failed a call; never the task's error.

    ``address`` is the cluster's; ``cause`` one of ``unreachable``, ``auth``, ``not_found``,
    ``server_error``, ``version_skew``, ``refused`` (or ``lost``: a LOST run's error, rebuilt
    from its record); ``ray_message`` what Ray said (empty when flyray found the problem
    itself, e.g. in its own version check); ``token_sent`` whether flyray sent a token (the
    token itself is never kept).
    """

    cause = "refused"

    def __init__(
        self, message: str, *, address: str, ray_message: str = "", token_sent: bool | None = None
    ) -> None:
        super().__init__(message)
        self.address, self.ray_message, self.token_sent = address, ray_message, token_sent


class ClusterUnreachableError(RayClusterError):
    """Nothing answered at the cluster's address: connection refused, timed out, unknown host."""

    cause = "unreachable"


class ClusterAuthError(RayClusterError):
    """The cluster wants a token and flyray sent none (``token_sent`` False) or a wrong one."""

    cause = "auth"


class RayJobNotFoundError(RayClusterError):
    """The cluster does not know the job: it was restarted, or the job was deleted."""

    cause = "not_found"


class ClusterServerError(RayClusterError):
    """The cluster answered a call with a server error (HTTP 5xx)."""

    cause = "server_error"


class VersionSkewError(RayClusterError):
    """The cluster runs another Ray (or Python) than this process; the message names both."""

    cause = "version_skew"


class BaseRuntimeError(FlyrayError, RuntimeError):
    """Flyte's root of run failures: ``code`` (e.g. the exception type), ``kind``, ``worker``."""

    def __init__(
        self, code: str, kind: ErrorKind, root_cause_message: str, worker: str | None = None
    ) -> None:
        super().__init__(root_cause_message)
        self.code = code
        self.kind = kind
        self.worker = worker


class RuntimeUserError(BaseRuntimeError):
    """The user's code or configuration failed (Flyte raises it for a failed task)."""

    def __init__(self, code: str, message: str, worker: str | None = None) -> None:
        super().__init__(code, "user", message, worker)


class RuntimeSystemError(BaseRuntimeError):
    """The platform failed, not the user's code."""

    def __init__(self, code: str, message: str, worker: str | None = None) -> None:
        super().__init__(code, "system", message, worker)


class RuntimeUnknownError(BaseRuntimeError):
    """A failure whose cause is not known."""

    def __init__(self, code: str, message: str, worker: str | None = None) -> None:
        super().__init__(code, "unknown", message, worker)


class InitializationError(BaseRuntimeError):
    """Something was used before it was set up."""


class OOMError(RuntimeUserError):
    """The task ran out of memory."""


class TaskInterruptedError(RuntimeUserError):
    """The task was interrupted."""


class RetriesExhaustedError(RuntimeUserError):
    """The task failed on every attempt it was given."""


class ModuleLoadError(RuntimeUserError):
    """The module that holds a task could not be loaded."""


class CustomError(RuntimeUserError):
    """An error the user raises with a code of their own."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, "user")

    @classmethod
    def from_exception(cls, e: Exception) -> CustomError:
        """A CustomError that carries ``e``'s type name as its code and ``e`` as its cause."""
        error = cls(type(e).__name__, str(e))
        error.__cause__ = e
        return error


class NonRecoverableError(RuntimeUserError):
    """Raised by a task to say: do not retry me, whatever retries remain."""

    def __init__(self, message: str, code: str = "NonRecoverableError") -> None:
        super().__init__(code, message)


class BadConfigurationError(ConfigError, RuntimeUserError):
    """Settings that cannot go together; Flyte raises ``RuntimeUserError("BadConfiguration")``."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        self.field, self.value, self.rule = field, value, rule
        self.code, self.kind, self.worker = "BadConfiguration", "user", None
        Exception.__init__(self, f"{field} {rule}; got {value!r}")


class ImagePullBackOffError(RuntimeUserError):
    """A container image could not be pulled."""


class TaskError(RuntimeUserError):
    """A task that ran somewhere else failed; carries what is needed to find out why.

    ``code`` is the task's exception type name when it is known (Flyte's ``code``).
    """

    def __init__(
        self,
        message: str,
        code: str = "TaskError",
        *,
        run_id: str | None = None,
        remote_traceback: str | None = None,
        logs: str | None = None,
    ) -> None:
        super().__init__(code, message)
        self.run_id = run_id
        self.remote_traceback = remote_traceback
        self.logs = logs


class RuntimeEnvSetupError(TaskError):
    """Ray could not build the task's runtime env (a pip, uv or conda install failed).

    The message quotes the installer's own error lines, so the package at fault is named.
    """

    def __init__(
        self,
        message: str,
        code: str = "RuntimeEnvSetupError",
        *,
        run_id: str | None = None,
        remote_traceback: str | None = None,
        logs: str | None = None,
    ) -> None:
        super().__init__(message, code, run_id=run_id, remote_traceback=remote_traceback, logs=logs)


class TaskTimeoutError(TaskError, TimeoutError):
    """The task did not finish within its ``timeout``."""

    def __init__(
        self,
        message: str,
        code: str = "TaskTimeoutError",
        *,
        run_id: str | None = None,
        remote_traceback: str | None = None,
        logs: str | None = None,
    ) -> None:
        super().__init__(message, code, run_id=run_id, remote_traceback=remote_traceback, logs=logs)


_user_error_types: dict[type, type] = {}
_FLYTE_FIELDS = ("code", "kind", "worker")


def as_user_error(error: BaseException) -> BaseException:
    """``error`` as an instance of its own type that is also a ``RuntimeUserError``.

    Flyte raises ``RuntimeUserError`` for a failed task; flyray keeps the task's own type too,
    so existing ``except ValueError`` code and Flyte's ``except RuntimeUserError`` both work.
    The copy has the original's args and attributes, prints the same and pickles as the
    original type. Errors that are already flyray's, that have fields of their own named like
    Flyte's (``code``, ``kind``, ``worker``), or that cannot be copied faithfully, stay as they
    are.
    """
    original = type(error)
    if isinstance(error, FlyrayError) or not isinstance(error, Exception):
        return error
    if any(inspect.getattr_static(error, name, None) is not None for name in _FLYTE_FIELDS):
        return error
    try:
        wrapped = _copied(error, _user_error_type(original))
    except Exception:  # a layout, constructor or state that cannot be combined
        return error
    wrapped.code, wrapped.kind, wrapped.worker = original.__name__, "user", None
    wrapped.__traceback__ = error.__traceback__
    wrapped.__cause__, wrapped.__context__ = error.__cause__, error.__context__
    wrapped.__suppress_context__ = error.__suppress_context__
    return wrapped


def is_task_error_copy(error: BaseException) -> bool:
    """Whether ``error`` is a task's own error as ``as_user_error`` returned it."""
    return type(error) in _user_error_types.values()


class _UserErrorBase(RuntimeUserError):
    """Between a task's error type and ``RuntimeUserError``: ``super().__init__(...)`` in the
    task's own type still reaches ``BaseException.__init__``, as it did before."""

    __init__ = BaseException.__init__  # type: ignore[assignment]


def _user_error_type(original: type) -> type:
    """The type that is both ``original`` and ``RuntimeUserError`` (made once per type)."""
    combined = _user_error_types.get(original)
    if combined is None:
        # RuntimeError and Exception are bases of RuntimeUserError already: it goes first.
        bases = (
            (_UserErrorBase, original)
            if issubclass(RuntimeUserError, original)
            else (original, _UserErrorBase)
        )
        namespace = {
            "__module__": original.__module__,
            "__qualname__": original.__qualname__,
            "__reduce_ex__": _reduce_as_original,
            "original_type": original,
        }
        combined = type(original.__name__, bases, namespace)
        _user_error_types[original] = combined
    return combined


def _copied(error: BaseException, combined: type) -> BaseException:
    """A ``combined`` instance equal to ``error``: same args, attributes and text.

    Built-in types are constructed again from their args (their C fields are parsed there);
    other types are not constructed (their ``__init__`` may have side effects): the copy gets
    the args and the attributes directly.
    """
    if type(error).__module__ == "builtins":
        wrapped = combined(*error.args)
    else:
        wrapped = combined.__new__(combined, *error.args)
        wrapped.args = error.args
    for name, value in vars(error).items():
        setattr(wrapped, name, value)
    if str(wrapped) != str(error) or wrapped.args != error.args:
        raise TypeError("the copy differs from the original")
    return wrapped


def _reduce_as_original(self: BaseException, protocol: int) -> Any:
    """Pickle a task's error as its own type (the combined type exists in this process only)."""
    original = type(self).original_type  # type: ignore[attr-defined]
    reduced = list(original.__reduce_ex__(self, protocol))
    if reduced[0] is type(self):
        reduced[0] = original
    if len(reduced) > 2 and isinstance(reduced[2], dict):
        reduced[2] = {k: v for k, v in reduced[2].items() if k not in _FLYTE_FIELDS} or None
    return tuple(reduced)
