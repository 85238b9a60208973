"""API authentication with the portal's own API keys (accounts.models.ApiKey).

``Authorization: Token <key>``. The key acts as its user; the request's audit rows name the
key (core.actors.acting_api_key)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.services.api_keys import api_key_authenticate
from core.actors import acting_api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give the key after 'Token', nothing else.")
        key = api_key_authenticate(parts[1].decode(errors="replace"))
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown, expired or revoked API key.")
        acting_api_key.set(f"{key.name} ({key.prefix})")
        return key.user, key

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class ApiKeySchema(OpenApiAuthenticationExtension):
    """How the OpenAPI schema and the API reference describe the key."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`: an API key made on your security page (shown once, expiring, revocable).",
        }
