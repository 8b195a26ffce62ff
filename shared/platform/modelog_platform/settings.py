"""Configuration from the environment, one pydantic-settings class per concern.

Every variable is prefixed MODELOG_; docker-compose.yml and the local stack
(`modelog up`) set the same names, and a test keeps the two in step.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelog.settings import service_url

COMMANDS_TOPIC = "modelog.commands"
EVENTS_TOPIC = "modelog.events"
# Command records that cannot even name a model: parked here, never dropped.
DEAD_LETTERS_TOPIC = "modelog.commands.dead-letter"
# Writes the registrar refused before they became commands: the auditor keeps them.
DENIALS_TOPIC = "modelog.denials"
# Serving signals for the sentinel (docs/serving.md): keyed by model, kept a week.
SIGNALS_TOPIC = "modelog.signals"


class EngineEndpoints(BaseSettings):
    """Where the engines are: what every service needs to reach them."""

    model_config = SettingsConfigDict(env_prefix="MODELOG_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:19092"
    # How clients reach Kafka: SCRAM-SHA-512 over TLS, as this process's
    # principal (a username and its password, inline or in a file), trusting
    # kafka_ca_file. Nothing is baked in: with no password, a process beside a
    # local stack (the CLI, tests, benchmarks) acts as that stack's Kafka
    # admin, trusting its CA, and the local supervisor gives each service its
    # own principal. PLAINTEXT (no authentication, no ACLs) exists only to
    # measure what security costs: the benchmark's "off" run.
    kafka_security_protocol: Literal["SASL_SSL", "PLAINTEXT"] = "SASL_SSL"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_password_file: Path | None = None
    kafka_ca_file: Path | None = None
    # Which PostgreSQL and as which role: the DSN names the role, never its
    # password (inline or in a file, so no DSN in a log gives it away). Every
    # connection is TLS, the server's certificate and host name verified
    # against postgres_ca_file. Nothing is baked in: with no password, a
    # process beside a local stack (the CLI, tests, benchmarks) acts as that
    # stack's PostgreSQL admin, and the local supervisor gives each service its own role.
    postgres_dsn: str = "postgresql://127.0.0.1:15432/modelog"
    postgres_password: SecretStr | None = None
    postgres_password_file: Path | None = None
    postgres_ca_file: Path | None = None
    s3_endpoint: str = "127.0.0.1:18333"
    # Who this process is on S3: an access key and its secret, inline or in a
    # file. Nothing is baked in: with no secret, a process beside a local stack
    # (the CLI, tests, benchmarks) acts as that stack's admin, and the local
    # supervisor gives each service its own identity.
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_secret_key_file: Path | None = None
    # The registrar's orphan reconciler deletes artifacts, which nothing else
    # in the registrar may: an identity of its own.
    s3_reconciler_access_key: str | None = None
    s3_reconciler_secret_key: SecretStr | None = None
    s3_reconciler_secret_key_file: Path | None = None
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    artifact_bucket: str = "modelog-artifacts"
    topic_partitions: int = 12

    def s3_credentials(self) -> "S3Credentials":
        """This process's S3 identity (see the fields above)."""
        return _credentials("MODELOG_S3", self.s3_access_key, self.s3_secret_key, self.s3_secret_key_file)

    def s3_reconciler_credentials(self) -> "S3Credentials":
        """The reconciler's identity; without one, the process's own, which a
        least-privilege registrar identity will not let delete."""
        if not (self.s3_reconciler_secret_key or self.s3_reconciler_secret_key_file):
            return self.s3_credentials()
        return _credentials("MODELOG_S3_RECONCILER", self.s3_reconciler_access_key,
                            self.s3_reconciler_secret_key, self.s3_reconciler_secret_key_file)

    def postgres(self) -> "PostgresLogin":
        """This process's PostgreSQL login (see the fields above)."""
        return _postgres_login(self.postgres_dsn, self.postgres_password, self.postgres_password_file,
                               self.postgres_ca_file)

    def kafka_credentials(self) -> "KafkaCredentials":
        """This process's Kafka principal (see the fields above)."""
        return _kafka_credentials(self.kafka_username, self.kafka_password, self.kafka_password_file)

    def kafka_ca(self) -> Path:
        """The CA file a Kafka client trusts: kafka_ca_file, else the local stack's."""
        if self.kafka_ca_file is not None:
            return self.kafka_ca_file
        from modelog_platform.engines.secrets import LocalSecrets  # the engines package imports this module

        ca = LocalSecrets(StackHome().home).root / "tls" / "ca.pem"
        if not ca.exists():
            raise ValueError(f"no CA for Kafka: set MODELOG_KAFKA_CA_FILE, or run beside a local stack "
                             f"(`modelog engines up`; home {ca.parents[2]})")
        return ca


@dataclass(frozen=True)
class KafkaCredentials:
    username: str
    password: str = field(repr=False)


LOCAL_KAFKA_ADMIN = "admin"


def _kafka_credentials(username: str | None, password: SecretStr | None, password_file: Path | None) -> KafkaCredentials:
    # An empty inline password counts as unset: the local supervisor blanks the
    # caller's so a service's own password file is what it uses.
    inline = password.get_secret_value() if password is not None else ""
    if inline and password_file is not None:
        raise ValueError("set one of MODELOG_KAFKA_PASSWORD and MODELOG_KAFKA_PASSWORD_FILE, not both")
    if password_file is not None:
        inline = password_file.read_text().strip()
    if inline:
        if not username:
            raise ValueError("MODELOG_KAFKA_USERNAME is required with its password")
        return KafkaCredentials(username, inline)
    if username:
        raise ValueError("MODELOG_KAFKA_USERNAME is set without MODELOG_KAFKA_PASSWORD(_FILE)")
    from modelog_platform.engines.secrets import LocalSecrets  # the engines package imports this module

    secrets = LocalSecrets(StackHome().home)
    if not (secrets.root / "kafka").is_dir():
        raise ValueError("no Kafka credentials: set MODELOG_KAFKA_USERNAME and MODELOG_KAFKA_PASSWORD_FILE, "
                         f"or run beside a local stack (`modelog engines up`; home {secrets.root.parent})")
    return KafkaCredentials(LOCAL_KAFKA_ADMIN, secrets.password("kafka", LOCAL_KAFKA_ADMIN))


@dataclass(frozen=True)
class PostgresLogin:
    """Everything a PostgreSQL connection needs: adapters.postgres connects with it."""

    dsn: str  # names the role, never its password
    password: str = field(repr=False)
    ca_file: Path  # the CA the server's certificate must chain to

    @property
    def role(self) -> str:
        return unquote(urlsplit(self.dsn).username or "")

    def in_schema(self, schema: str) -> "PostgresLogin":
        """The same login, its tables found in `schema` first."""
        return self._with("search_path", schema)

    def acting_as(self, role: str) -> "PostgresLogin":
        """The same login, acting as `role` (one it is a member of) from its
        first statement: what it creates belongs to `role`."""
        return self._with("role", role)

    def _with(self, setting: str, value: str) -> "PostgresLogin":
        # asyncpg sends a DSN parameter it does not know itself as a server setting.
        return replace(self, dsn=f"{self.dsn}{'&' if '?' in self.dsn else '?'}{setting}={value}")


LOCAL_POSTGRES_ADMIN = "modelog_admin"


def _postgres_login(dsn: str, password: SecretStr | None, password_file: Path | None,
                    ca_file: Path | None) -> PostgresLogin:
    parts = urlsplit(dsn)
    if parts.password is not None:
        raise ValueError("MODELOG_POSTGRES_DSN names a password, which logs would show: "
                         "give it in MODELOG_POSTGRES_PASSWORD_FILE instead")
    # An empty inline password counts as unset: the local supervisor blanks the
    # caller's so a service's own password file is what it uses.
    inline = password.get_secret_value() if password is not None else ""
    if inline and password_file is not None:
        raise ValueError("set one of MODELOG_POSTGRES_PASSWORD and MODELOG_POSTGRES_PASSWORD_FILE, not both")
    if password_file is not None:
        inline = password_file.read_text().strip()
    from modelog_platform.engines.secrets import LocalSecrets  # the engines package imports this module

    secrets = LocalSecrets(StackHome().home)
    if ca_file is None:
        ca_file = secrets.root / "tls" / "ca.pem"
        if not ca_file.exists():
            raise ValueError("no CA for PostgreSQL: set MODELOG_POSTGRES_CA_FILE, or run beside a local stack "
                             f"(`modelog engines up`; home {secrets.root.parent})")
    if inline:
        if not parts.username:
            raise ValueError("MODELOG_POSTGRES_DSN must name the role whose password is given")
        return PostgresLogin(dsn, inline, ca_file)
    if parts.username:
        raise ValueError("MODELOG_POSTGRES_DSN names a role without MODELOG_POSTGRES_PASSWORD(_FILE)")
    if not (secrets.root / "postgres").is_dir():
        raise ValueError("no PostgreSQL login: set MODELOG_POSTGRES_DSN's role and MODELOG_POSTGRES_PASSWORD_FILE, "
                         f"or run beside a local stack (`modelog engines up`; home {secrets.root.parent})")
    admin = parts._replace(netloc=f"{LOCAL_POSTGRES_ADMIN}@{parts.netloc}").geturl()
    return PostgresLogin(admin, secrets.password("postgres", LOCAL_POSTGRES_ADMIN), ca_file)


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str = field(repr=False)


LOCAL_S3_ADMIN = "admin"


def _credentials(prefix: str, access_key: str | None, secret: SecretStr | None, secret_file: Path | None) -> S3Credentials:
    # An empty inline secret counts as unset: the local supervisor blanks the
    # caller's so a service's own secret file is what it uses.
    inline = secret.get_secret_value() if secret is not None else ""
    if inline and secret_file is not None:
        raise ValueError(f"set one of {prefix}_SECRET_KEY and {prefix}_SECRET_KEY_FILE, not both")
    if secret_file is not None:
        inline = secret_file.read_text().strip()
    if inline:
        if not access_key:
            raise ValueError(f"{prefix}_ACCESS_KEY is required with its secret")
        return S3Credentials(access_key, inline)
    if access_key:
        raise ValueError(f"{prefix}_ACCESS_KEY is set without {prefix}_SECRET_KEY(_FILE)")
    return _local_admin(prefix)


def _local_admin(prefix: str) -> S3Credentials:
    """The local stack's S3 admin, whose secret `modelog engines up` made."""
    from modelog_platform.engines.secrets import LocalSecrets  # the engines package imports this module

    secrets = LocalSecrets(StackHome().home)
    if not (secrets.root / "seaweedfs").is_dir():
        raise ValueError(f"no S3 credentials: set {prefix}_ACCESS_KEY and {prefix}_SECRET_KEY_FILE, "
                         f"or run beside a local stack (`modelog engines up`; home {secrets.root.parent})")
    return S3Credentials(LOCAL_S3_ADMIN, secrets.password("seaweedfs", LOCAL_S3_ADMIN))


class ServicePorts(BaseSettings):
    """Where the five services listen, and where to reach each one: its
    MODELOG_<SERVICE>_URL when set (a service behind a proxy or elsewhere),
    else http://MODELOG_HOST:MODELOG_<SERVICE>_PORT."""

    model_config = SettingsConfigDict(env_prefix="MODELOG_", extra="ignore")

    host: str = "127.0.0.1"
    registrar_port: int = 8000
    promoter_port: int = 8001
    projector_port: int = 8002
    auditor_port: int = 8003
    sentinel_port: int = 8004
    registrar_url: str | None = None
    promoter_url: str | None = None
    projector_url: str | None = None
    auditor_url: str | None = None
    sentinel_url: str | None = None

    def url(self, service: str) -> str:
        # The client's rule, so the CLI and the services never disagree on an address.
        prefix = f"MODELOG_{service.upper()}"
        return service_url(service, {"MODELOG_HOST": self.host,
                                     f"{prefix}_PORT": str(getattr(self, f"{service}_port")),
                                     f"{prefix}_URL": getattr(self, f"{service}_url") or ""})


STACK_HOME = ".modelog"


def find_stack_home(start: Path | None = None) -> Path:
    """The nearest `.modelog` directory in `start` (the cwd) or its parents, as
    git finds .git, so every command run inside a checkout finds its stack;
    else `.modelog` in `start`, where `modelog up` makes one."""
    start = (start or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        if (directory / STACK_HOME).is_dir():
            return directory / STACK_HOME
    return start / STACK_HOME


class StackHome(BaseSettings):
    """Where the local stack keeps its data, pid files, logs and the development
    issuer's keys: MODELOG_HOME, else found from the working directory."""

    model_config = SettingsConfigDict(env_prefix="MODELOG_", extra="ignore")

    home: Path = Field(default_factory=find_stack_home)


class LocalStack(StackHome):
    """The local, Docker-free run: where engines are cached and data lives."""

    # Data directories belong to the checkout (home); built engines and jars are
    # cached outside it so a fresh clone starts in seconds.
    cache_dir: Path = Path.home() / ".cache" / "modelog"
    kafka_controller_port: int = 19093
    seaweedfs_master_port: int = 19333
    seaweedfs_volume_port: int = 18080
    seaweedfs_filer_port: int = 18888
    # SeaweedFS's gRPC listeners. Named, not left to its HTTP port + 10000
    # default, so that no stack's port lands in Linux's ephemeral range
    # (32768+), where any outgoing connection may already hold it.
    seaweedfs_master_grpc_port: int = 19334
    seaweedfs_volume_grpc_port: int = 18081
    seaweedfs_filer_grpc_port: int = 18889
    seaweedfs_s3_grpc_port: int = 18334
    # The team's MLflow tracking server, where the `mlflow` package is installed (engines/mlflow.py).
    mlflow_tracking_port: int = 15000
    # The OpenID Connect provider people sign in to the console with (engines/oidc.py):
    # its issuer URL is http://127.0.0.1:<oidc_port>.
    oidc_port: int = 14444


class SealSettings(BaseSettings):
    """Audit seals: the key that signs them, how often, how long S3 keeps them locked."""

    model_config = SettingsConfigDict(env_prefix="MODELOG_", extra="ignore")

    # The signing key (auditor): a PEM Ed25519 private key, inline or in a
    # file; without either, a pair made on first use under <home>/seals/.
    audit_seal_key: SecretStr | None = None
    audit_seal_key_file: Path | None = None
    # Verifying only (`modelog audit verify` away from the auditor): the public key.
    audit_seal_public_key_file: Path | None = None
    audit_seal_every_s: float = 600.0
    # S3 Object Lock on each seal object, where the bucket has it enabled.
    audit_seal_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    audit_seal_retention_days: int = 3650


class LogWriterSettings(StackHome):
    """The promoter's key that signs every event it writes (see modelog_contract.signing):
    MODELOG_LOG_SIGNING_KEY (PEM) or MODELOG_LOG_SIGNING_KEY_FILE; without either,
    the local stack's pair, made on first use under <home>/log-writer/."""

    log_signing_key: SecretStr | None = None
    log_signing_key_file: Path | None = None


class LogTrustSettings(StackHome):
    """The writer keys a reader of modelog.events accepts: MODELOG_LOG_TRUSTED_KEYS_FILE,
    a bundle of PEM public keys, each optionally preceded by a line
    `retired-after: <ISO-8601 instant>`; without it, the local stack's writer key."""

    log_trusted_keys_file: Path | None = None
