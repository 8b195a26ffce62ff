"""Persistent maps (immutables.Map, a HAMT) as pydantic field types.

A model's state grows with its history. A persistent map shares all but the
changed path with the map it came from, so evolve sets one entry in O(log n)
instead of copying every entry of a dict on every event.

On the wire a PersistentMap is the plain JSON object a dict would be, keys in
sorted order (a HAMT iterates in hash order): stored states and the auditor's
answers keep the shape they had, and a map read back equals the one written.
"""

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, get_args

from immutables import Map
from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

K = TypeVar("K")
V = TypeVar("V")


class _AsDict:
    """Validated from a mapping (each key and value as dict[K, V] would be),
    serialized to a dict with sorted keys."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        key, value = get_args(source) or (Any, Any)
        as_dict = handler.generate_schema(dict[key, value])  # type: ignore[valid-type]
        return core_schema.no_info_after_validator_function(
            Map,
            core_schema.no_info_before_validator_function(_plain, as_dict),
            serialization=core_schema.wrap_serializer_function_ser_schema(_sorted, schema=as_dict),
        )


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Map) else value


def _sorted(value: Mapping[Any, Any], to_dict: core_schema.SerializerFunctionWrapHandler) -> Any:
    return to_dict(dict(sorted(value.items())))


PersistentMap = Annotated[Map[K, V], _AsDict()]
