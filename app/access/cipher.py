"""Encryption of the shops' access tokens at rest (Fernet: AES-128-CBC with HMAC-SHA256).

TOKEN_ENCRYPTION_KEY holds one or more comma-separated Fernet keys. Tokens are
encrypted with the first and decrypted with any, so a key is rotated by putting
the new key first, re-encrypting (`python -m app shops rotate-keys`), then
removing the old one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenKeyMissing(Exception):
    """No TOKEN_ENCRYPTION_KEY: tokens cannot be stored (never in plaintext)."""


class TokenUnreadable(Exception):
    """A stored token was encrypted with a key that is no longer configured."""


class TokenCipher:
    def __init__(self, keys: tuple[str, ...]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def encrypt(self, token: str) -> str:
        return self._require().encrypt(token.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            return self._require().decrypt(stored.encode("ascii")).decode()
        except InvalidToken:
            raise TokenUnreadable(
                "the stored access token cannot be decrypted with any key in "
                "TOKEN_ENCRYPTION_KEY: set the token again, or restore the old key"
            ) from None

    def rotate(self, stored: str) -> str:
        """The same token, encrypted with the first key."""
        try:
            return self._require().rotate(stored.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise TokenUnreadable("a stored token matches no configured key") from None

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise TokenKeyMissing(
                "TOKEN_ENCRYPTION_KEY is not set: access tokens are only stored encrypted. "
                "Generate a key with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and set it."
            )
        return self._fernet
