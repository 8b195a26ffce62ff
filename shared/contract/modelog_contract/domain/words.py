"""Plain words for refusals and gate details: stages, lists of names."""

from collections.abc import Iterable

from modelog_contract.domain.types import Stage

# A refusal names at most this many of the things it lists; the message stays
# readable (and its event small) on a model with hundreds of them.
LISTED = 10


def stage_words(stage: Stage) -> str:
    """'no stage' for "None", else the stage's name."""
    return "no stage" if stage == "None" else stage


def joined(names: Iterable[str], conjunction: str = "or") -> str:
    """'a', 'a or b', 'a, b or c'. There must be at least one name."""
    *rest, last = names
    return f"{', '.join(rest)} {conjunction} {last}" if rest else last


def listing(what: str, names: Iterable[str], owner: str = "it") -> str:
    """'its tags: a, b' or 'it has no tags' ("the model's ..." for owner "the
    model"); past LISTED names, how many more."""
    shown = list(names)
    if not shown:
        return f"{owner} has no {what}"
    more = len(shown) - LISTED
    whose = "its" if owner == "it" else f"{owner}'s"
    return f"{whose} {what}: {', '.join(shown[:LISTED])}" + (f" and {more} more" if more > 0 else "")
