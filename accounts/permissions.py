from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from accounts.models import AccessToken, TokenScope


class TokenScopeAllowed(permissions.BasePermission):
    """A token scoped narrower than `full` reaches only views that name its scope.

    Views declare `token_scopes = {"usage:write"}`; by default only `full` tokens (and
    sessions) pass.
    """

    message = "This token's scope does not allow this request."
    code = "token_scope"

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, AccessToken) or token.scope == TokenScope.FULL:
            return True
        return token.scope in getattr(view, "token_scopes", set())


class IsOperator(permissions.BasePermission):
    """Operators are staff users."""

    message = "Only operators may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsOperatorOrReadOnly(IsOperator):
    """Everyone signed in reads; operators write (inventory and programs as code)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return super().has_permission(request, view)


# The global defaults, for views that add a permission of their own.
DEFAULT_PERMISSIONS: list[type[permissions.BasePermission]] = [
    permissions.IsAuthenticated,
    TokenScopeAllowed,
]
