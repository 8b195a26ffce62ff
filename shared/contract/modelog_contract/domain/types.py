"""Value types shared by commands, events and state."""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class InvalidName(ValueError):
    """A model name the registry refuses (it becomes a Kafka key and a URL segment)."""


def check_model_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise InvalidName(
            f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


ModelName = Annotated[str, AfterValidator(check_model_name)]
Sha256 = Annotated[str, Field(pattern=SHA256_HEX.pattern)]
AliasName = Annotated[str, Field(pattern=ALIAS_NAME.pattern)]
Stage = Literal["None", "Staging", "Production", "Archived"]


class Frozen(BaseModel):
    """Base of every domain value: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Frozen):
    """Who asked: taken from authentication, never from a request body.
    `issuer` and `token_id` (the token's jti) say which token proved it."""

    subject: str
    roles: tuple[str, ...] = ()
    issuer: str | None = None
    token_id: str | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_proof(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Events from before authentication have neither field; leaving them
        # out when absent keeps those events' bytes, and so their hashes, as stored.
        fields = handler(self)
        return {k: v for k, v in fields.items() if v is not None or k not in ("issuer", "token_id")}


ArtifactForm = Literal["manifest", "unverified"]


class Artifact(Frozen):
    """A content-addressed artifact: the bytes at `uri` hash to `sha256`.

    `form` says what the digest covers. Absent: the bytes of one file.
    "manifest": a tree's manifest (path, size, sha256 of each of its files),
    so the digest pins every file. "unverified": a source modelog could not
    read, kept as given in `uri`; `sha256` is then the digest of the uri's
    text, not of any bytes, and `size` is 0."""

    uri: str
    sha256: Sha256
    size: int = Field(ge=0)
    form: ArtifactForm | None = None

    @property
    def verified(self) -> bool:
        return self.form != "unverified"

    @model_serializer(mode="wrap")
    def _omit_absent_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Events from before trees have no form; leaving it out when absent
        # keeps those events' bytes, and so their hashes, as stored.
        fields = handler(self)
        return {k: v for k, v in fields.items() if v is not None or k != "form"}


class VersionFacts(Frozen):
    """What registering a version says of it: the artifact and its lineage.
    The command, the event and the state all carry these."""

    artifact: Artifact
    run_id: str | None = None
    dataset_uri: str | None = None
    dataset_sha256: Sha256 | None = None
    model_card: str | None = None
    signature: dict[str, Any] = {}
    description: str = ""
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
