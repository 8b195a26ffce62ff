"""Tokens already verified, so a caller's next request skips the signature check.

Serving systems send the same bearer token thousands of times; an Ed25519
verification costs ~0.3 ms each, more than the rest of a cached lookup. The
key is the exact token string, so a token that differs by one character (a
tampered or another token) is never answered from here: it is verified.
An entry lasts until the token's `exp` (without leeway: past it, the verifier
judges again, leeway and all) and at most `max_age_s`, so a change of the
issuer's keys reaches every token within minutes. Bounded, least recently
used first out. The token itself is kept only as a key, never logged.
"""

import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone

from modelog_platform.identity.tokens import Identity, TokenVerifier


class VerifiedTokens:
    def __init__(self, verifier: TokenVerifier, max_entries: int = 10_000, max_age_s: float = 120.0,
                 clock=time.time):
        self.verifier, self.max_entries, self.max_age_s, self.clock = verifier, max_entries, max_age_s, clock
        self._entries: OrderedDict[str, tuple[Identity, float]] = OrderedDict()  # token -> (identity, valid until)
        self._lock = threading.Lock()  # misses are verified in worker threads

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, token: str) -> Identity | None:
        """The identity of `token` if it was verified and is still valid, else None."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            identity, valid_until = entry
            if self.clock() >= valid_until:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return identity

    def verify(self, token: str) -> Identity:
        """The token's identity, from here or verified now (InvalidToken if it proves nothing)."""
        identity = self.cached(token)
        if identity is not None:
            return identity
        now = self.clock()
        identity = self.verifier.verify(token, now=datetime.fromtimestamp(now, timezone.utc))
        valid_until = min(identity.expires_at.timestamp(), now + self.max_age_s)
        with self._lock:
            self._entries[token] = (identity, valid_until)
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return identity
