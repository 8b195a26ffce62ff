"""Audit seals in S3, and the key that signs them.

One JSON object per seal under `seals/` in the artifact bucket, named so they
list in seal order (see Seal.object_name). Where the bucket has S3 Object Lock
enabled, each object is written with a retention (COMPLIANCE by default):
neither it nor its version can be deleted or changed until then, by anyone.
A server or bucket without Object Lock still gets the seal, unlocked, and
says so (`locked: false`): a seal is never lost for want of a lock.

Overwriting a key in a versioned bucket adds a version and leaves the locked
one: the reader takes each key's first version and reports any later one, or
a delete marker, as tampering.
"""

import io
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import S3Error
from minio.retention import Retention
from pydantic import ValidationError

from modelog_contract.audit.seals import Seal, SealBreak
from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.identity.dev import ensure_key_pair
from modelog_platform.settings import EngineEndpoints, LocalStack, SealSettings

SEALS_PREFIX = "seals/"
log = logging.getLogger("modelog_contract.audit.seals")


def signing_key(settings: SealSettings | None = None, stack: LocalStack | None = None) -> Ed25519PrivateKey:
    """MODELOG_AUDIT_SEAL_KEY, else MODELOG_AUDIT_SEAL_KEY_FILE, else the local pair."""
    settings = settings or SealSettings()
    if settings.audit_seal_key is not None:
        pem = settings.audit_seal_key.get_secret_value().encode()
    elif settings.audit_seal_key_file is not None:
        pem = settings.audit_seal_key_file.read_bytes()
    else:
        pem = ensure_key_pair(local_key_directory(stack))[0].read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the audit seal key must be an Ed25519 private key")
    return key


def public_key(settings: SealSettings | None = None, stack: LocalStack | None = None) -> Ed25519PublicKey:
    """MODELOG_AUDIT_SEAL_PUBLIC_KEY_FILE, else the signing key's public half."""
    settings = settings or SealSettings()
    if settings.audit_seal_public_key_file is None:
        return signing_key(settings, stack).public_key()
    key = serialization.load_pem_public_key(settings.audit_seal_public_key_file.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the audit seal public key must be an Ed25519 key")
    return key


def local_key_directory(stack: LocalStack | None = None):
    return (stack or LocalStack()).home.resolve() / "seals"


@dataclass
class StoredSeals:
    """Every seal in the bucket in name order, and what was wrong with the objects."""

    seals: list[Seal] = field(default_factory=list)
    breaks: list[SealBreak] = field(default_factory=list)


class SealStore:
    """Blocking (the minio SDK is synchronous): call from a worker thread."""

    def __init__(self, endpoints: EngineEndpoints, settings: SealSettings | None = None, client=None):
        store = ArtifactStore(endpoints, client)
        self.client, self.bucket = store.client, store.bucket
        self.settings = settings or SealSettings()

    def put(self, seal: Seal) -> bool:
        """Write the seal; True if S3 holds it under Object Lock retention."""
        data = seal.model_dump_json().encode()
        until = datetime.now(timezone.utc) + timedelta(days=self.settings.audit_seal_retention_days)
        mode = COMPLIANCE if self.settings.audit_seal_lock_mode == "COMPLIANCE" else GOVERNANCE
        try:
            self._write(seal.object_name, data, Retention(mode, until))
            return True
        except S3Error as error:
            log.warning("seal %s written without Object Lock: the bucket refused retention (%s: %s)",
                        seal.number, error.code, error.message)
        self._write(seal.object_name, data, None)
        return False

    def _write(self, name: str, data: bytes, retention: Retention | None) -> None:
        self.client.put_object(self.bucket, name, io.BytesIO(data), len(data),
                               content_type="application/json", retention=retention)

    def latest(self) -> Seal | None:
        names = [o.object_name for o in self.client.list_objects(self.bucket, prefix=SEALS_PREFIX)]
        return self._read(max(names)) if names else None

    def _read(self, name: str, version_id: str | None = None) -> Seal:
        response = self.client.get_object(self.bucket, name, version_id=version_id)
        try:
            return Seal.model_validate_json(response.read())
        finally:
            response.close()
            response.release_conn()

    def all(self) -> StoredSeals:
        """Each key's first version, in name order; later versions and delete
        markers are reported, as are objects that are not seals."""
        versions: dict[str, list] = {}
        for item in self.client.list_objects(self.bucket, prefix=SEALS_PREFIX, include_version=True):
            versions.setdefault(item.object_name, []).append(item)
        found = StoredSeals()
        for name in sorted(versions):
            items = versions[name][::-1]  # S3 lists a key's versions newest first
            number = _number_of(name)
            if len(items) > 1 or items[0].is_delete_marker:
                found.breaks.append(SealBreak(seal=number, model=None, seq=None, problem=(
                    f"{name} was overwritten or deleted after it was written ({len(items)} versions)")))
            first = next((o for o in items if not o.is_delete_marker), None)
            if first is None:
                continue
            try:
                seal = self._read(name, first.version_id if first.version_id not in (None, "null") else None)
            except ValidationError as error:
                found.breaks.append(SealBreak(seal=number, model=None, seq=None,
                                              problem=f"{name} is not a readable seal: {error.errors()[0]['msg']}"))
                continue
            if seal.object_name != name:
                found.breaks.append(SealBreak(seal=number, model=None, seq=None,
                                              problem=f"{name} holds seal {seal.number} ({seal.object_name})"))
            found.seals.append(seal)
        return found


def _number_of(name: str) -> int:
    try:
        return int(name.removeprefix(SEALS_PREFIX).split("-", 1)[0])
    except ValueError:
        return 0
