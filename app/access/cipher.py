"""Encryption of the shops' tokens at rest (Fernet: AES-128-CBC with HMAC-SHA256).

TOKEN_ENCRYPTION_KEY holds one or more comma-separated Fernet keys. Tokens are
encrypted with the first and decrypted with any, so a key is rotated by putting
the new key first, re-encrypting (`python -m app shops rotate-keys`), then
removing the old one.

Each ciphertext is bound to its shop and purpose (access, refresh, original):
the binding is inside the authenticated plaintext, so a value copied to another
shop's row, or from the refresh column to the access column, fails to decrypt
instead of being sent to the wrong host. Tokens stored before binding existed
(access tokens only) are still read, and bound at the next `rotate-keys`.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.http.errors import ServiceUnavailable

_BOUND = b"shopify-ingest:v2\x00"


class Purpose(StrEnum):
    access = "access"
    refresh = "refresh"
    # A non-expiring token kept while it is migrated to an expiring one.
    original = "original"


class TokenKeyMissing(ServiceUnavailable):
    """No TOKEN_ENCRYPTION_KEY: tokens cannot be stored (never in plaintext)."""

    retry_later = False

    def __init__(self) -> None:
        super().__init__(
            "TOKEN_ENCRYPTION_KEY is not set: access tokens are only stored encrypted. "
            "Generate a key with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'` and set it."
        )


class TokenUnreadable(Exception):
    """A stored token no configured key decrypts, or one bound to another shop or purpose."""


class TokenCipher:
    def __init__(self, keys: tuple[str, ...]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def encrypt(self, token: str, shop: str, purpose: Purpose) -> str:
        plaintext = _BOUND + b"\x00".join((shop.encode(), purpose.encode(), token.encode()))
        return self._require().encrypt(plaintext).decode("ascii")

    def decrypt(self, stored: str, shop: str, purpose: Purpose) -> str:
        plaintext = self._plaintext(stored)
        if not plaintext.startswith(_BOUND):
            if purpose is Purpose.access:  # stored before tokens were bound
                return _text(plaintext)
            raise TokenUnreadable(f"the stored {purpose} token is not bound to its shop")
        parts = plaintext[len(_BOUND) :].split(b"\x00", 2)
        if len(parts) != 3 or parts[:2] != [shop.encode(), purpose.encode()]:
            raise TokenUnreadable(
                f"the stored {purpose} token of {shop} was encrypted for another shop or use:"
                " it is refused, not sent; store the shop's token again"
            )
        return _text(parts[2])

    def rebind(self, stored: str, shop: str, purpose: Purpose) -> str:
        """The same token, bound to its shop and purpose and encrypted with the first key."""
        return self.encrypt(self.decrypt(stored, shop, purpose), shop, purpose)

    def _plaintext(self, stored: str) -> bytes:
        try:
            return self._require().decrypt(stored.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise TokenUnreadable(
                "a stored token cannot be decrypted with any key in TOKEN_ENCRYPTION_KEY:"
                " store the shop's token again, or restore the old key"
            ) from None

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise TokenKeyMissing
        return self._fernet


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise TokenUnreadable("a stored token is not text") from None
