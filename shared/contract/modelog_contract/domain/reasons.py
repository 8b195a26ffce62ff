"""Why a command was refused: the reason codes a CommandRejected carries.

A code is part of the wire contract (clients branch on it, the trail keeps it
forever), so a code is never renamed or reused. Beside each code: the HTTP
status the registrar answers it with, and what it means in plain words.
"""

from enum import Enum
from typing import NamedTuple

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class Reason(str, Enum):
    """A refusal's reason code; on the wire, the code's own string."""

    # The command does not fit the model as it stands.
    VERSION_CONFLICT = "version_conflict"
    MODEL_EXISTS = "model_exists"
    STAGE_UNCHANGED = "stage_unchanged"
    ALREADY_APPROVED = "already_approved"
    NOT_ARCHIVED = "not_archived"
    VERSION_IN_PRODUCTION = "version_in_production"
    COMMAND_EXPIRED = "command_expired"
    CARD_UNCHANGED = "card_unchanged"
    # What it names is gone, or never was.
    MODEL_DELETED = "model_deleted"
    VERSION_DELETED = "version_deleted"
    MODEL_NOT_FOUND = "model_not_found"
    VERSION_NOT_FOUND = "version_not_found"
    REQUEST_NOT_FOUND = "request_not_found"
    ALIAS_NOT_FOUND = "alias_not_found"
    TAG_NOT_FOUND = "tag_not_found"
    # Who asked may not do it.
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    SELF_APPROVAL = "self_approval"
    ROLLBACK_NOT_ALLOWED = "rollback_not_allowed"
    RESERVED_NAME = "reserved_name"
    # The policy's gates, or the command itself, say no.
    GATE_FAILED = "gate_failed"
    MALFORMED_COMMAND = "malformed_command"
    UNKNOWN_COMMAND = "unknown_command"
    # A traffic split that cannot be served as asked.
    INVALID_SPLIT = "invalid_split"
    VERSION_NOT_SERVING = "version_not_serving"
    SPLIT_WEIGHTS_INVALID = "split_weights_invalid"
    CANARY_ABOVE_MAXIMUM = "canary_above_maximum"

    def __str__(self) -> str:
        # The code itself, as on the wire: Enum's own str() is 'Reason.GATE_FAILED',
        # and how format() treats a str mix-in changed in Python 3.12.
        return self.value

    @property
    def status(self) -> int:
        """The HTTP status the registrar answers this refusal with."""
        return EXPLAINED[self].status

    @property
    def meaning(self) -> str:
        """What the code means, in one plain sentence."""
        return EXPLAINED[self].meaning

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The published schema documents every code, so a client reading it
        # learns what each refusal means without reading this module.
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["description"] = "\n".join(
            [cls.__doc__ or "", ""] + [f"- {r.value} (HTTP {r.status}): {r.meaning}" for r in cls])
        return schema


class Explained(NamedTuple):
    status: int
    meaning: str


EXPLAINED: dict[Reason, Explained] = {
    Reason.VERSION_CONFLICT: Explained(409, "the model is not at the seq the command expected: someone changed it first"),
    Reason.MODEL_EXISTS: Explained(409, "a model with that name already exists"),
    Reason.STAGE_UNCHANGED: Explained(409, "the version is already in the stage asked for"),
    Reason.ALREADY_APPROVED: Explained(409, "this approver has already approved the request"),
    Reason.NOT_ARCHIVED: Explained(409, "only an Archived version can be rolled back to"),
    Reason.VERSION_IN_PRODUCTION: Explained(409, "a version in Production cannot be deleted: archive it first"),
    Reason.COMMAND_EXPIRED: Explained(409, "the command id is no longer in the model's idempotency window and "
                                           "the command is no newer than ids the window forgot: it may have been "
                                           "decided already; read the model and, if the change is still wanted, "
                                           "send it with a new command id"),
    Reason.CARD_UNCHANGED: Explained(409, "the revised model card is the text the version's card already has"),
    Reason.MODEL_DELETED: Explained(410, "the model was deleted; its name is not used again"),
    Reason.VERSION_DELETED: Explained(410, "the version was deleted and can no longer change or move"),
    Reason.MODEL_NOT_FOUND: Explained(404, "no model has that name"),
    Reason.VERSION_NOT_FOUND: Explained(404, "the model has no version with that number"),
    Reason.REQUEST_NOT_FOUND: Explained(404, "no pending transition request has that id"),
    Reason.ALIAS_NOT_FOUND: Explained(404, "the model has no alias with that name"),
    Reason.TAG_NOT_FOUND: Explained(404, "the model or version has no tag with that key"),
    Reason.UNAUTHENTICATED: Explained(401, "the command's token does not prove who the command says it is from"),
    Reason.FORBIDDEN: Explained(403, "the actor lacks the role the command needs"),
    Reason.SELF_APPROVAL: Explained(403, "four eyes: whoever requested a transition or registered the version "
                                         "may not approve it"),
    Reason.ROLLBACK_NOT_ALLOWED: Explained(403, "the policy in force does not allow rollbacks"),
    Reason.RESERVED_NAME: Explained(403, "names starting 'modelog.' are the registry's own streams, not models"),
    Reason.GATE_FAILED: Explained(422, "a gate of the policy refused the move; the rule results say which and why"),
    Reason.MALFORMED_COMMAND: Explained(422, "the record is not a valid command"),
    Reason.UNKNOWN_COMMAND: Explained(422, "the promoter has no handler for that command type"),
    Reason.INVALID_SPLIT: Explained(422, "a traffic split names a version twice, or a shadow that is also routed"),
    Reason.VERSION_NOT_SERVING: Explained(409, "a traffic split may route to, or shadow, only versions in Staging "
                                               "or Production"),
    Reason.SPLIT_WEIGHTS_INVALID: Explained(422, "a traffic split's weights must be positive whole percents "
                                                 "summing to 100"),
    Reason.CANARY_ABOVE_MAXIMUM: Explained(422, "a version other than the Production one would get more of the "
                                                "traffic than the policy's max_canary_percent"),
}

