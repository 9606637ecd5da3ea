"""One root error for touchpoint; every subclass says what went wrong and what to do next.

Domain errors also inherit the matching builtin, so callers that only know Python's
exceptions (``ValueError``, ``KeyError``, ``PermissionError``) still catch them.

Every class is registered in :data:`ERRORS`, the one table from error code to class (and so to its
HTTP status); one code has one class. The HTTP API's error handler and the CLI's ``--json`` errors
print :func:`error_body`, the one error shape.
"""

from __future__ import annotations

from typing import Any


class TouchpointError(Exception):
    """Root of every error touchpoint raises on purpose.

    ``code`` is a stable machine-readable name (used in the HTTP error shape and
    ``--json`` output); ``hint`` says what to do next.
    """

    code = "touchpoint_error"
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class ConfigError(TouchpointError, ValueError):
    code = "config_error"
    http_status = 500


class InvalidInput(TouchpointError, ValueError):
    """Input that cannot be accepted as given; the message names the field, and ``field`` may name it for a
    program too (the dashboard marks that form field)."""

    code = "invalid_input"
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class InvalidDefinition(InvalidInput):
    """A definition (an audience, a score) that cannot be compiled; ``path`` is the JSON path of the bad
    node (``$.all[1].count``) and the message says what is allowed there."""

    code = "invalid_definition"
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None, path: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    http_status = 413


class InvalidBatch(InvalidInput):
    """A batch whose shared fields (``context``, ``integrations``, ``sentAt``) break a limit: no item can be
    judged as sent, so the whole body is kept in quarantine (``body``) and the request answers 400."""

    code = "invalid_batch"
    http_status = 400

    def __init__(
        self,
        message: str,
        hint: str | None = "fix the batch's top-level field; the body was kept in quarantine",
        *,
        field: str | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.body = body


class NotFound(TouchpointError, KeyError):
    code = "not_found"
    http_status = 404

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return TouchpointError.__str__(self)


class AlreadyExists(TouchpointError, ValueError):
    code = "already_exists"
    http_status = 409


class Unauthorized(TouchpointError, PermissionError):
    code = "unauthorized"
    http_status = 401


class Forbidden(TouchpointError, PermissionError):
    code = "forbidden"
    http_status = 403


class Overloaded(TouchpointError, RuntimeError):
    """The collector cannot commit more right now; the client should retry later."""

    code = "overloaded"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class TooManyAttempts(TouchpointError, RuntimeError):
    """Too many failed sign-ins from one address or for one user name; wait ``retry_after`` seconds."""

    code = "too_many_attempts"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int = 60, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class RateLimited(TouchpointError, RuntimeError):
    """More requests than a limit allows (per API key, or per address without a valid key); wait
    ``retry_after`` seconds (docs/configuration.md, Limits)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class WarehouseError(TouchpointError, RuntimeError):
    code = "warehouse_error"
    http_status = 503


class WarehouseLocked(WarehouseError):
    code = "warehouse_locked"
    http_status = 503


class WarehouseOutOfMemory(WarehouseError):
    """The engine ran out of the memory it may use; nothing of the failed transaction was stored."""

    code = "warehouse_out_of_memory"
    http_status = 503


class KeyConflict(WarehouseError):
    """A write that was told its rows' keys were new met a stored key (``insert_new(..., assume_new=True)``);
    the engine refused the transaction, nothing of it was stored, and the writer redoes it with the check."""

    code = "key_conflict"
    http_status = 503


class NotConverged(TouchpointError, RuntimeError):
    """A fit or an iterative computation did not converge; its numbers are not shown."""

    code = "not_converged"
    http_status = 422


class ModelNotFitted(TouchpointError, RuntimeError):
    """A model was asked for predictions before it was fitted or loaded."""

    code = "model_not_fitted"
    http_status = 409


class ModelMismatch(TouchpointError, ValueError):
    """A saved model does not match the code loading it (another model, format or configuration)."""

    code = "model_mismatch"
    http_status = 400


class JobRunning(TouchpointError, RuntimeError):
    """A run of a job was asked for while one is under way: two runs of one job never overlap."""

    code = "job_running"
    http_status = 409


class JobFailed(TouchpointError, RuntimeError):
    """A job run now (``touchpoint jobs run``) failed; the run log keeps its error."""

    code = "job_failed"
    http_status = 500


def _table(*classes: type[TouchpointError]) -> dict[str, type[TouchpointError]]:
    table: dict[str, type[TouchpointError]] = {}
    for cls in classes:
        if cls.code in table:
            raise TypeError(f"error code {cls.code!r} is used by {table[cls.code].__name__} and {cls.__name__}")
        table[cls.code] = cls
    return table


#: The error table: code -> class; ``ERRORS[code].http_status`` is the code's HTTP status.
ERRORS: dict[str, type[TouchpointError]] = _table(
    TouchpointError,
    ConfigError,
    InvalidInput,
    InvalidBatch,
    InvalidDefinition,
    PayloadTooLarge,
    NotFound,
    AlreadyExists,
    Unauthorized,
    Forbidden,
    Overloaded,
    TooManyAttempts,
    RateLimited,
    WarehouseError,
    WarehouseLocked,
    WarehouseOutOfMemory,
    KeyConflict,
    NotConverged,
    ModelNotFitted,
    ModelMismatch,
    JobRunning,
    JobFailed,
)


def http_status(exc: TouchpointError) -> int:
    """The HTTP status of ``exc``, from the error table (500 for a class that is not registered).

    >>> http_status(NotFound("no profile 'p1'"))
    404
    """
    registered = ERRORS.get(exc.code)
    return registered.http_status if registered is not None and isinstance(exc, registered) else 500


def error_body(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    """The one error shape of the HTTP API and of the CLI under ``--json``.

    >>> error_body("not_found", "no profile 'p1'", "list profiles with `touchpoint profiles list`")["error"]["code"]
    'not_found'
    """
    return {"success": False, "error": {"code": code, "message": message, "hint": hint}}
