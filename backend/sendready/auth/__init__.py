"""Who is calling: bearer-token validation (JWKS), the MSAL client the service uses, and Graph."""

from .tokens import AuthError, Principal, TokenValidator

__all__ = ["AuthError", "Principal", "TokenValidator"]
