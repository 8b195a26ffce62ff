"""The writer's key and the readers' trusted keys, from settings.

Only the promoter holds the signing key: in a deployment it is a secret
mounted into the promoter alone, and every other service is given the public
half. The local stack makes one pair under <home>/log-writer/ (beside the
development issuer's), which its services find there.

Rotating the key: add the new public key to every reader's trusted bundle,
restart the readers, give the promoter the new private key and restart it,
then mark the old key in the bundle `retired-after:` the instant of that
restart. Events the old key signed before then keep verifying; nothing it signs
later does. docs/log-signing.md walks through it.
"""

import itertools
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelog_contract.signing import TrustedKey, TrustedKeys
from modelog_platform.identity.dev import ensure_key_pair
from modelog_platform.settings import LogTrustSettings, LogWriterSettings

RETIRED_AFTER = "retired-after:"
PEM_BEGIN = "-----BEGIN PUBLIC KEY-----"


def local_writer_directory(settings: LogWriterSettings | LogTrustSettings) -> Path:
    return settings.home.expanduser().resolve() / "log-writer"


def signing_key(settings: LogWriterSettings) -> Ed25519PrivateKey:
    if settings.log_signing_key is not None:
        pem = settings.log_signing_key.get_secret_value().encode()
    elif settings.log_signing_key_file is not None:
        pem = settings.log_signing_key_file.read_bytes()
    else:
        pem = ensure_key_pair(local_writer_directory(settings))[0].read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the log signing key must be an Ed25519 private key")
    return key


def trusted_keys(settings: LogTrustSettings) -> TrustedKeys:
    if settings.log_trusted_keys_file is not None:
        return parse_bundle(settings.log_trusted_keys_file.read_text())
    _, public = ensure_key_pair(local_writer_directory(settings))
    return parse_bundle(public.read_text())


def parse_bundle(text: str) -> TrustedKeys:
    """PEM public keys, each optionally preceded by `retired-after: <instant>`."""
    keys = []
    # Each split piece ends with the header lines of the key that follows it.
    for before, block in itertools.pairwise(text.split(PEM_BEGIN)):
        retired_after = None
        for line in before.splitlines():
            if line.strip().lower().startswith(RETIRED_AFTER):
                retired_after = datetime.fromisoformat(line.split(":", 1)[1].strip().replace("Z", "+00:00"))
        key = serialization.load_pem_public_key((PEM_BEGIN + block.split("-----END PUBLIC KEY-----")[0]
                                                 + "-----END PUBLIC KEY-----\n").encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("a trusted log key must be an Ed25519 public key")
        keys.append(TrustedKey(key, retired_after))
    if not keys:
        raise ValueError("the trusted log keys bundle holds no PEM public key")
    return TrustedKeys(keys)
