"""A Kafka storage made by a stack without authentication is never opened by
a secured one: it would run with no SCRAM users, or run open."""

import pytest

from modelog_platform.engines.kafka import SECURITY_MARKER, Kafka
from modelog_platform.engines.layout import Layout
from modelog_platform.settings import EngineEndpoints, LocalStack


def layout(tmp_path, protocol: str) -> Layout:
    return Layout(EngineEndpoints(kafka_security_protocol=protocol), LocalStack(home=tmp_path), lambda _: None)


def existing_storage(lay: Layout, made_for: str | None) -> None:
    data = lay.data("kafka") / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("node.id=1\n")
    if made_for is not None:
        (lay.data("kafka") / SECURITY_MARKER).write_text(made_for + "\n")


def test_a_storage_from_a_plaintext_stack_is_refused_with_what_to_do(tmp_path):
    lay = layout(tmp_path, "SASL_SSL")
    existing_storage(lay, made_for=None)  # older stacks wrote no marker
    with pytest.raises(RuntimeError, match="made for PLAINTEXT clients, this stack runs SASL_SSL") as refused:
        Kafka()._check_storage(lay)
    assert str(lay.data("kafka")) in str(refused.value) and "remove that directory" in str(refused.value)


def test_a_storage_made_for_this_protocol_is_opened(tmp_path):
    lay = layout(tmp_path, "SASL_SSL")
    existing_storage(lay, made_for="SASL_SSL")
    Kafka()._check_storage(lay)


def test_a_secured_storage_is_not_opened_without_authentication(tmp_path):
    lay = layout(tmp_path, "PLAINTEXT")
    existing_storage(lay, made_for="SASL_SSL")
    with pytest.raises(RuntimeError, match="made for SASL_SSL clients"):
        Kafka()._check_storage(lay)
