"""What MLflow's client sends, read the way MLflow's server reads it: JSON
bodies whose unknown fields are ignored (newer clients send more), versions as
strings, stages in any case, tags as key/value lists; and the checks whose
refusals MLflow's client expects as INVALID_PARAMETER_VALUE."""

import re

from pydantic import BaseModel, ConfigDict

from registrar.mlflow import search
from registrar.mlflow.errors import MlflowError
from registrar.mlflow.shapes import RESERVED_TAG_PREFIX, STAGES, stage_of

MAX_VERSION = 2**31 - 1
MLFLOW_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


class MlflowBody(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Tag(MlflowBody):
    key: str
    value: str = ""


def invalid(message: str, code: str = "invalid_parameter_value") -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message, code)


def search_terms(filter: str | None, order_by: list[str] | None, page_token: str | None, max_results: int,
                 most: int, entity: search.Entity, order_keys: dict[str, str],
                 default_order: tuple[tuple[str, bool], ...]) -> tuple[tuple[search.Comparison, ...],
                                                                      tuple[tuple[str, bool], ...]]:
    """A search's filter and order, and its page size and token checked, as MLflow's server checks them."""
    if not 1 <= max_results <= most:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
                      f"at most {most} and at least 1.")
    try:
        comparisons = search.parse_filter(filter, entity)
        order = search.parse_order_by(order_by or [], order_keys, default_order)
        search.offset_of(page_token)
    except search.InvalidSearch as error:
        raise invalid(str(error), "invalid_search") from None
    return comparisons, order


def version_number(text: str | int) -> int:
    """MLflow sends versions as strings; modelog numbers them from 1."""
    try:
        number = int(str(text).strip())
    except ValueError:
        raise invalid(f"Parameter 'version' must be an integer, got '{text}'.", "invalid_version") from None
    if not 1 <= number <= MAX_VERSION:
        raise invalid(f"Parameter 'version' must be a version number from 1, got '{text}'.", "invalid_version")
    return number


def stage(text: str) -> str:
    found = stage_of(text)
    if found is None:
        raise invalid(f"Invalid Model Version stage: {text}. Value must be one of {', '.join(STAGES)}.",
                      "invalid_stage")
    return found


def tag_key(key: str) -> str:
    """Tags under modelog.* hold the facts modelog keeps for MLflow (shapes.py): not the caller's to set."""
    if key.startswith(RESERVED_TAG_PREFIX):
        raise invalid(f"Tag key {key!r} is reserved: modelog keeps its own facts under '{RESERVED_TAG_PREFIX}'",
                      "reserved_tag")
    return key


def tags(given: list[Tag]) -> dict[str, str]:
    return {tag_key(t.key): t.value for t in given}


def alias(name: str) -> str:
    if MLFLOW_RESERVED_ALIAS.fullmatch(name):
        raise invalid(f"Invalid alias name: '{name}'. Aliases 'latest' and 'v<number>' are reserved.",
                      "invalid_alias")
    return name
