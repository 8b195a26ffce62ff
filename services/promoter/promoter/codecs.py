"""Faust does not know pydantic: this codec validates events with a TypeAdapter."""

from faust.serializers import codecs

from modelog.codec import decode_event, encode
from modelog.domain.events import Event


class EventCodec(codecs.Codec):
    def _dumps(self, value: Event) -> bytes:
        return encode(value)

    def _loads(self, raw: bytes) -> Event:
        return decode_event(raw)


def register() -> None:
    codecs.register("modelog-event", EventCodec())
