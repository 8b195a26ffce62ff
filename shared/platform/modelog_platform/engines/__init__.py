"""Docker-free local engines: Kafka (KRaft), PostgreSQL, SeaweedFS (S3) and
an OpenID Connect provider (Ory Hydra), and, where the `mlflow` package is
installed, an MLflow tracking server.

`up` installs what is missing (jars, packages, the weed binary; cached
outside the checkout), starts each engine that is not running as a local
process with its data under `LocalStack.home`, waits until a real client can
use it and provisions topics, role/database and bucket. `status` and `down`
report on and stop what `up` started.
"""

from modelog_platform.engines.kafka import provision_topics, provision_topics_async
from modelog_platform.engines.stack import down, service_env, status, up

__all__ = ["down", "provision_topics", "provision_topics_async", "service_env", "status", "up"]
