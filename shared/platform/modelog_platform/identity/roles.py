"""The roles modelog knows, and what each includes (see permissions). Apart
from the rest of identity so the `modelog` command can name them without
loading the JWT library."""

READER, PUBLISHER, APPROVER, OPERATOR, AUDITOR, ADMIN, SERVER = (
    "reader", "publisher", "approver", "operator", "auditor", "admin", "server")
ROLES = (READER, PUBLISHER, APPROVER, OPERATOR, AUDITOR, ADMIN, SERVER)
# Each role and what it includes besides itself.
INCLUDES = {READER: (), PUBLISHER: (READER,), APPROVER: (READER,), OPERATOR: (READER,), AUDITOR: (READER,),
            ADMIN: ROLES, SERVER: (READER,)}


def unknown_roles(roles) -> list[str]:
    """Roles modelog does not know. A verifier ignores them (a real issuer's
    token may carry roles of other systems, and effective_roles leaves them
    out); the dev issuer refuses to mint them, as a misspelt role would
    silently grant nothing."""
    return [role for role in roles if role not in INCLUDES]
