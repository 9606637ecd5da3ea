"""One root error for touchpoint; every subclass says what went wrong and what to do next.

Domain errors also inherit the matching builtin, so callers that only know Python's
exceptions (``ValueError``, ``KeyError``, ``PermissionError``) still catch them.
"""

from __future__ import annotations


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
    """Input that cannot be accepted as given; the message names the field."""

    code = "invalid_input"
    http_status = 400


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    http_status = 413


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


class WarehouseError(TouchpointError, RuntimeError):
    code = "warehouse_error"
    http_status = 503


class WarehouseLocked(WarehouseError):
    code = "warehouse_locked"
    http_status = 503
