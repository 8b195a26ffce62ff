"""modelog's one way to connect to Kafka: every AIOKafkaConsumer, AIOKafkaProducer
and AIOKafkaAdminClient is built with these settings, so no client can reach
the broker any other way than as a principal, over TLS, trusting one CA.
"""

from typing import Any

from aiokafka.helpers import create_ssl_context

from modelog_platform.settings import EngineEndpoints

SASL_MECHANISM = "SCRAM-SHA-512"


def kafka_connection(endpoints: EngineEndpoints) -> dict[str, Any]:
    """The keyword arguments that connect an aiokafka client as this process's
    principal (EngineEndpoints.kafka_credentials) to endpoints.kafka_bootstrap."""
    if endpoints.kafka_security_protocol == "PLAINTEXT":
        return {"bootstrap_servers": endpoints.kafka_bootstrap, "security_protocol": "PLAINTEXT"}
    credentials = endpoints.kafka_credentials()
    return {
        "bootstrap_servers": endpoints.kafka_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": SASL_MECHANISM,
        "sasl_plain_username": credentials.username,
        "sasl_plain_password": credentials.password,
        # The CA alone, not the system's: the broker's certificate is ours.
        "ssl_context": create_ssl_context(cafile=str(endpoints.kafka_ca())),
    }
