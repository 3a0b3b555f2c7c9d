"""The local stack's own errors (a template it cannot deploy raises devstack.template's
TemplateError instead)."""

from __future__ import annotations

from typing import Any


class DevStackError(Exception):
    """The local stack cannot do what was asked (already running, no such schedule, ...)."""


class InvokeError(Exception):
    """A function invoked through `DevStack.invoke` returned a FunctionError."""

    def __init__(self, function_error: str, payload: Any, logs: str) -> None:
        self.function_error = function_error
        self.payload = payload
        self.logs = logs
        kind = payload.get("errorType") if isinstance(payload, dict) else None
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        super().__init__(f"{kind}: {message}")

    @property
    def error_type(self) -> str | None:
        """The handler's exception name (the payload's errorType), if it says one."""
        return self.payload.get("errorType") if isinstance(self.payload, dict) else None
