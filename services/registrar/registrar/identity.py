"""Who is calling. The actor of every command comes from here, never from a
request body."""

from modelog.domain.types import Actor

# Until bearer tokens are verified here every caller is the same anonymous
# actor without roles: it may register and describe models, and the decider
# refuses it anything that needs a role (approvals, rollbacks, protected aliases).
ANONYMOUS = Actor(subject="anonymous")


def caller() -> Actor:
    return ANONYMOUS
