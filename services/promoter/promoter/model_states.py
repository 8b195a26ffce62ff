"""A partition's model states, those restored from a snapshot kept as the
JSON it stored them in until a decision or the log's tail first needs them.

Reading a state back costs milliseconds for a model with a long history
(pydantic rebuilds every version), so decoding every model of a snapshot
would make a restart cost grow with the number of models. Most models are not
touched in the minutes after a restart: they stay as JSON, which is also what
the next snapshot writes for them, unchanged (promoter.snapshots.encode).

A stored state's head (seq, hash) is kept beside its JSON, so the loop checks
an idle model's head against the log without reading the state back. A model
no decision touched for a whole snapshot interval goes back to the JSON that
snapshot wrote (`keep_as_json`): memory holds read-back states only for the
models in use, however long the promoter runs.

The bytes were proven when the snapshot was read (the promoter's signature,
its sha256, today's state schema), so a state that still does not read back,
or whose head is not the one beside it, is a snapshot the promoter must not
use: `StoredStateUnreadable` says so, and whoever first reads the model
refuses the snapshot (restore's tail fold, or the loop's read-back of the
models a batch is about to decide for).
"""

from collections.abc import Iterator, Mapping, MutableMapping
from typing import NamedTuple

from pydantic import ValidationError

from modelog_contract.domain import ModelState


class StoredStateUnreadable(Exception):
    """A model's stored state that does not read back as the ModelState its line names."""


class Stored(NamedTuple):
    seq: int
    head_hash: str
    json: bytes


class ModelStates(MutableMapping[str, ModelState]):
    def __init__(self, decoded: dict[str, ModelState] | None = None, stored: dict[str, Stored] | None = None):
        self.decoded: dict[str, ModelState] = decoded if decoded is not None else {}
        self.stored: dict[str, Stored] = stored if stored is not None else {}

    def __getitem__(self, name: str) -> ModelState:
        state = self.decoded.get(name)
        if state is not None:
            return state
        stored = self.stored[name]  # KeyError: a model this partition has not seen
        try:
            state = ModelState.model_validate_json(stored.json)
        except ValidationError as error:
            raise StoredStateUnreadable(f"model {name!r}'s state in the snapshot does not read back: {error}") \
                from error
        if (state.name, state.seq, state.head_hash) != (name, stored.seq, stored.head_hash):
            raise StoredStateUnreadable(f"the snapshot's line for model {name!r} at seq {stored.seq} holds "
                                        f"{state.name!r}'s state at seq {state.seq}")
        del self.stored[name]
        self.decoded[name] = state
        return state

    def head(self, name: str) -> tuple[int, str]:
        """(seq, hash) of the model's head event, without reading a stored state back."""
        state = self.decoded.get(name)
        if state is not None:
            return state.seq, state.head_hash
        stored = self.stored[name]
        return stored.seq, stored.head_hash

    def __setitem__(self, name: str, state: ModelState) -> None:
        self.stored.pop(name, None)
        self.decoded[name] = state

    def __delitem__(self, name: str) -> None:
        if name in self.decoded:
            del self.decoded[name]
        else:
            del self.stored[name]

    def __contains__(self, name: object) -> bool:
        return name in self.decoded or name in self.stored

    def __iter__(self) -> Iterator[str]:
        # Over copies of the keys: reading a state while iterating moves it
        # from one dict to the other.
        yield from list(self.decoded)
        yield from list(self.stored)

    def __len__(self) -> int:
        return len(self.decoded) + len(self.stored)

    def keep_as_json(self, serialised: Mapping[str, Stored], as_of: Mapping[str, ModelState]) -> int:
        """Hold again as JSON each model whose state is still the one `as_of`
        (a snapshot's cut) holds, as `serialised` has it; returns how many.
        A model decided since keeps its newer state."""
        kept = 0
        for name, stored in serialised.items():
            state = self.decoded.get(name)
            if state is not None and state is as_of.get(name):
                del self.decoded[name]
                self.stored[name] = stored
                kept += 1
        return kept

    def copy(self) -> "ModelStates":
        """A consistent cut: states are immutable, so copying the two dicts is enough."""
        return ModelStates(dict(self.decoded), dict(self.stored))
