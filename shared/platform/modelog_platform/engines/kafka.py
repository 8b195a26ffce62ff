"""Kafka 4.x in KRaft mode: one combined broker+controller on the machine's Java.

Jars come from Maven Central via deploy/kafka/pom.xml into the cache; the
broker's config, log directory and logs live under home/kafka and home/logs.

Least privilege: the client listener takes SCRAM-SHA-512 over TLS only (the
local CA's certificate), the StandardAuthorizer denies what no ACL allows,
and each service has a principal of its own whose ACLs (SERVICE_ACLS) allow
what it does and nothing more. Admin (provisioning, tests that set up or
attack) is the only super user besides the controller's own principal.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from enum import IntEnum
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.admin import CreateAclsRequest
from pydantic import SecretStr

from modelog_platform.adapters.kafka_connection import SASL_MECHANISM, kafka_connection
from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine, run_sync
from modelog_platform.engines.kafka_users import add_scram_users, missing_principals, principals_of, record_principals
from modelog_platform.engines.layout import Layout, deploy_dir, port_of, wait_until
from modelog_platform.engines.secrets import LocalSecrets
from modelog_platform.engines.tls import ensure_server_certificate
from modelog_platform.settings import (
    COMMANDS_TOPIC,
    DEAD_LETTERS_TOPIC,
    DENIALS_TOPIC,
    EVENTS_TOPIC,
    LOCAL_KAFKA_ADMIN,
    SIGNALS_TOPIC,
    EngineEndpoints,
)

TOPIC_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "-1"}
# The broker stamps each command with the time it appended it: the promoter
# judges a command's token at that time, which no publisher can backdate.
COMMAND_TOPIC_CONFIGS = {**TOPIC_CONFIGS, "message.timestamp.type": "LogAppendTime"}
# Signals are evidence while their windows are judged, not history: a week is plenty.
SIGNALS_TOPIC_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}
TOPIC_ALREADY_EXISTS = 36

# The broker's controller listener authenticates the broker to the controller
# (both in this one process) as this principal, by SASL/PLAIN: SCRAM credentials
# live in the metadata log, which the controller has to serve before it can read them.
CONTROLLER_PRINCIPAL = "controller"
# The SCRAM users made with a fresh storage: the admin and one per service,
# plus `publisher`, for an external service that publishes commands. One
# added here is added to existing storages at their next start (kafka_users).
PRINCIPALS = (LOCAL_KAFKA_ADMIN, "promoter", "registrar", "publisher", "projector", "auditor", "sentinel")
# Written beside the storage at format time: what the storage was made for.
# A storage without it was made by a stack without authentication.
SECURITY_MARKER = "security-protocol"


class Resource(IntEnum):  # Kafka's ResourceType codes
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5


class Pattern(IntEnum):  # Kafka's PatternType codes
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):  # Kafka's AclOperation codes
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    IDEMPOTENT_WRITE = 12


ALLOW = 3  # AclPermissionType.ALLOW; nothing is ever denied explicitly: no ACL is a denial
Acl = tuple[Resource, str, Pattern, Operation]


def _on(resource: Resource, name: str, *operations: Operation, pattern: Pattern = Pattern.LITERAL) -> list[Acl]:
    return [(resource, name, pattern, operation) for operation in operations]


def service_acls(promoter_group: str = "modelog-promoter") -> dict[str, list[Acl]]:
    """What each principal may do; anything else is denied (no ACL, no access).
    Read and Write imply Describe. No one but admin may create or delete
    topics, alter configs or read another's group."""
    read, write = Operation.READ, Operation.WRITE
    return {
        # Decides commands into events (the only writer of modelog.events),
        # restores from events and follows the default policy there, parks
        # commands that name no model, fences its predecessor through
        # transactional ids `<group>-<partition>`.
        "promoter": [*_on(Resource.TOPIC, COMMANDS_TOPIC, read), *_on(Resource.GROUP, promoter_group, read),
                     *_on(Resource.TOPIC, EVENTS_TOPIC, read, write), *_on(Resource.TOPIC, DEAD_LETTERS_TOPIC, write),
                     *_on(Resource.TRANSACTIONAL_ID, promoter_group, write, Operation.DESCRIBE,
                          pattern=Pattern.PREFIXED),
                     *_on(Resource.CLUSTER, "kafka-cluster", Operation.IDEMPOTENT_WRITE)],
        # Publishes commands and the writes it refused; reads nothing.
        "registrar": [*_on(Resource.TOPIC, COMMANDS_TOPIC, write), *_on(Resource.TOPIC, DENIALS_TOPIC, write)],
        # A service publishing commands as the registrar would, for itself,
        # and a serving fleet's monitoring publishing signals for the sentinel.
        "publisher": [*_on(Resource.TOPIC, COMMANDS_TOPIC, write), *_on(Resource.TOPIC, SIGNALS_TOPIC, write)],
        # Projects events (its group), and the change feed and rebuilds read them without one.
        "projector": [*_on(Resource.TOPIC, EVENTS_TOPIC, read), *_on(Resource.GROUP, "modelog-projector", read)],
        # Projects events and keeps the registrar's denials, a group for each.
        "auditor": [*_on(Resource.TOPIC, EVENTS_TOPIC, read), *_on(Resource.TOPIC, DENIALS_TOPIC, read),
                    *_on(Resource.GROUP, "modelog-auditor", read), *_on(Resource.GROUP, "modelog-auditor-denials", read)],
        # Windows signals in a Faust app: its group and the topics Faust makes
        # for itself (table changelogs, the assignor's), all named after the
        # app id; follows the log for the models' policies and stages. Its
        # decisions go through the registrar, so it writes no command.
        "sentinel": [*_on(Resource.TOPIC, SIGNALS_TOPIC, read, Operation.CREATE), *_on(Resource.TOPIC, EVENTS_TOPIC, read),
                     *_on(Resource.GROUP, "modelog-sentinel", read),
                     *_on(Resource.TOPIC, "modelog-sentinel", read, write, Operation.CREATE, pattern=Pattern.PREFIXED)],
    }


def _acl_requests(acls: list[tuple[str, Acl]]) -> list[CreateAclsRequest]:
    return [CreateAclsRequest(resource, name, pattern, f"User:{principal}", "*", operation, ALLOW)
            for principal, (resource, name, pattern, operation) in acls]


async def provision_acls_async(endpoints: EngineEndpoints) -> None:
    """Give each principal its ACLs (service_acls); creating one that exists changes nothing."""
    admin = AIOKafkaAdminClient(**kafka_connection(endpoints))
    await admin.start()
    try:
        wanted = [(principal, acl) for principal, acls in service_acls().items() for acl in acls]
        for request in _acl_requests(wanted):
            response = await admin._send_request(request)  # aiokafka's admin has no create_acls of its own
            for error_code, message in response.creation_responses:
                if error_code:
                    raise RuntimeError(f"kafka: creating an ACL failed ({error_code}: {message})")
    finally:
        await admin.close()


def kafka_version() -> str:
    pom = deploy_dir() / "kafka" / "pom.xml"
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(pom).getroot().findtext("m:properties/m:kafka.version", namespaces=ns)
    if version is None:
        raise RuntimeError(f"{pom} names no kafka.version property")
    return version


def jars_cache_key() -> str:
    """The Kafka version plus a digest of the pom: any change to it resolves the jars anew."""
    pom = (deploy_dir() / "kafka" / "pom.xml").read_bytes()
    return f"{kafka_version()}-{hashlib.sha256(pom).hexdigest()[:12]}"


async def provision_topics_async(endpoints: EngineEndpoints) -> None:
    """Create the commands and events topics (and the dead letters of commands
    that name no model, and the registrar's denials) if missing; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(**kafka_connection(endpoints))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, partitions, 1, topic_configs=configs)
            for name, partitions, configs in ((COMMANDS_TOPIC, endpoints.topic_partitions, COMMAND_TOPIC_CONFIGS),
                                              (EVENTS_TOPIC, endpoints.topic_partitions, TOPIC_CONFIGS),
                                              (DEAD_LETTERS_TOPIC, 1, TOPIC_CONFIGS),
                                              (DENIALS_TOPIC, endpoints.topic_partitions, TOPIC_CONFIGS),
                                              (SIGNALS_TOPIC, endpoints.topic_partitions, SIGNALS_TOPIC_CONFIGS))
            if name not in existing
        ]
        if not wanted:
            return
        response = await admin.create_topics(wanted)
        for topic in response.to_object().get("topic_errors") or response.to_object().get("topics", []):
            # A concurrent creator may have won the race: that is fine.
            if topic["error_code"] not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"kafka: creating {topic} failed")
    finally:
        await admin.close()


def provision_topics(endpoints: EngineEndpoints) -> None:
    run_sync(lambda: provision_topics_async(endpoints))


def provision_kafka(endpoints: EngineEndpoints) -> None:
    """As the admin `endpoints` names: the topics, then (unless the broker runs
    without authentication) every principal's ACLs."""
    provision_topics(endpoints)
    if endpoints.kafka_security_protocol == "SASL_SSL":
        run_sync(lambda: provision_acls_async(endpoints))


async def _list_topics(endpoints: EngineEndpoints) -> list[str]:
    admin = AIOKafkaAdminClient(**kafka_connection(endpoints), request_timeout_ms=5000)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


def _authenticates(endpoints: EngineEndpoints) -> bool:
    run_sync(lambda: _list_topics(endpoints))  # raises while the broker refuses the principal
    return True


class Kafka(Engine):
    name = "kafka"
    ready_timeout = 120.0

    def port(self, lay: Layout) -> int:
        return port_of(lay.endpoints.kafka_bootstrap)

    def libs(self, lay: Layout) -> Path:
        return lay.cache / "kafka" / jars_cache_key() / "libs"

    def install(self, lay: Layout) -> None:
        libs = self.libs(lay)
        if any(libs.glob("kafka_2.13-*.jar")):
            return
        lay.report("kafka: resolving broker jars with mvn (first time, ~1 min)…")
        # Resolve into a temporary directory and rename: an interrupted run
        # must not leave a half-filled cache that looks complete.
        tmp = libs.with_name(f"libs.tmp-{uuid.uuid4().hex[:8]}")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["mvn", "-q", "-B", "-f", str(deploy_dir() / "kafka" / "pom.xml"),
                 "dependency:copy-dependencies", f"-DoutputDirectory={tmp}",
                 "-DincludeScope=runtime"],
                check=True,
            )
            tmp.rename(libs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        lay.report(f"kafka: jars cached in {libs}")

    def secured(self, lay: Layout) -> bool:
        return lay.endpoints.kafka_security_protocol == "SASL_SSL"

    def admin_endpoints(self, lay: Layout) -> EngineEndpoints:
        """This stack's admin, whatever principal the caller's environment names."""
        if not self.secured(lay):
            return lay.endpoints
        secrets = LocalSecrets(lay.home)
        return lay.endpoints.model_copy(update={
            "kafka_username": LOCAL_KAFKA_ADMIN, "kafka_password_file": None,
            "kafka_password": SecretStr(secrets.password(self.name, LOCAL_KAFKA_ADMIN)),
            "kafka_ca_file": ensure_server_certificate(secrets, self.name).ca})

    def _security(self, lay: Layout, port: int, cport: int) -> dict[str, str]:
        """Listeners and authorizer. Both listeners are loopback-only SASL over
        TLS. CLIENT takes SCRAM users (PRINCIPALS); CONTROLLER takes one PLAIN
        user, `controller`, which is the broker itself: no client principal can
        authenticate there, so no client can reach the controller's APIs (or
        forward a request in another principal's name) past the authorizer."""
        if not self.secured(lay):
            return {
                "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            }
        secrets = LocalSecrets(lay.home)
        certificate = ensure_server_certificate(secrets, self.name)
        # Kafka's PEM keystore is one file: the private key, then the chain.
        keystore = lay.data(self.name) / "keystore.pem"
        _write_private(keystore, certificate.key.read_text() + certificate.certificate.read_text())
        admin = secrets.password(self.name, LOCAL_KAFKA_ADMIN)
        controller = secrets.password(self.name, CONTROLLER_PRINCIPAL)
        return {
            "listeners": f"CLIENT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{port}",
            "inter.broker.listener.name": "CLIENT",
            "listener.security.protocol.map": "CLIENT:SASL_SSL,CONTROLLER:SASL_SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certificate.ca),
            "ssl.endpoint.identification.algorithm": "https",
            "listener.name.client.sasl.enabled.mechanisms": SASL_MECHANISM,
            # The broker's own connections to itself (transaction markers) go
            # through CLIENT as admin: they need ClusterAction.
            "sasl.mechanism.inter.broker.protocol": SASL_MECHANISM,
            f"listener.name.client.{SASL_MECHANISM.lower()}.sasl.jaas.config":
                f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="{LOCAL_KAFKA_ADMIN}" password="{admin}";',
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required '
                f'username="{CONTROLLER_PRINCIPAL}" password="{controller}" user_{CONTROLLER_PRINCIPAL}="{controller}";',
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            # The controller principal is the broker registering and heartbeating
            # (ClusterAction) before any ACL is loaded, which only super users may.
            "super.users": f"User:{LOCAL_KAFKA_ADMIN};User:{CONTROLLER_PRINCIPAL}",
        }

    def _write_config(self, lay: Layout) -> None:
        d = lay.data(self.name)
        port, cport = self.port(lay), lay.stack.kafka_controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # 4.x dynamic quorum: the storage is formatted with --standalone.
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
            "controller.listener.names": "CONTROLLER",
            **self._security(lay, port, cport),
            "log.dirs": str(d / "data"),
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            # Fewer internal partitions: faster first group/transaction on one node.
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "group.initial.rebalance.delay.ms": "0",
            # Hung transactions of killed test producers are aborted quickly.
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "5000",
            "transaction.remove.expired.transaction.cleanup.interval.ms": "60000",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "log.retention.check.interval.ms": "300000",
            # Two cores run the whole stack (broker, PostgreSQL, five services):
            # the defaults' 3 network and 8 request-handler threads only take
            # turns on them, switching context on every request.
            "num.network.threads": "2",
            "num.io.threads": "2",
            # Kafka's default, written out so it stays so: no fsync per message
            # or on a timer; the log is flushed by the OS, and a record is
            # acknowledged once it is in the log (acks=all of one replica).
            "log.flush.interval.messages": str(2**63 - 1),
        }
        # It holds the admin's and the controller's passwords.
        _write_private(d / "server.properties", "".join(f"{k}={v}\n" for k, v in props.items()))
        (d / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.console.type = Console\n"
            "appender.console.name = STDOUT\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = [%d] %p %m (%c)%n\n"
            "appender.file.type = File\n"
            "appender.file.name = FILE\n"
            f"appender.file.fileName = {lay.logs / 'kafka-server.log'}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = WARN\n"
            "rootLogger.appenderRef.console.ref = STDOUT\n"
            "rootLogger.appenderRef.file.ref = FILE\n"
        )

    def _java(self, lay: Layout, main: str, *args: str) -> list[str]:
        d = lay.data(self.name)
        return [
            "java", "-Xmx512m", "-Xms128m",
            f"-Dlog4j2.configurationFile={d / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={lay.logs}",
            "-cp", f"{self.libs(lay)}/*",
            main, *args,
        ]

    def _format(self, lay: Layout) -> None:
        """A fresh storage, with the SCRAM users of PRINCIPALS when secured."""
        d = lay.data(self.name)
        # Passed as --cluster-id=ID: an id starting with '-' (base64url allows
        # it) would otherwise be read as an option and the format fails.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        users: list[str] = []
        if self.secured(lay):
            secrets = LocalSecrets(lay.home)
            # On the command line for the seconds the format takes, as StorageTool
            # takes them; the passwords never reach a log.
            for principal in PRINCIPALS:
                users += ["--add-scram",
                          f"{SASL_MECHANISM}=[name={principal},password={secrets.password(self.name, principal)}]"]
        fmt = subprocess.run(
            self._java(lay, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                       "-c", str(d / "server.properties"), "--standalone", *users),
            capture_output=True, text=True,
        )
        if fmt.returncode != 0:
            raise RuntimeError(f"kafka: formatting storage failed\n{fmt.stdout}{fmt.stderr}")
        (d / SECURITY_MARKER).write_text(lay.endpoints.kafka_security_protocol + "\n")
        if self.secured(lay):
            record_principals(d, PRINCIPALS)

    def _check_storage(self, lay: Layout) -> None:
        """Refuse a storage made for another security protocol: one from a stack
        without authentication has no SCRAM users, and running it with an
        authorizer would lock every service out, or, run as it was, leave the log open."""
        marker = lay.data(self.name) / SECURITY_MARKER
        made_for = marker.read_text().strip() if marker.exists() else "PLAINTEXT"
        wanted = lay.endpoints.kafka_security_protocol
        if made_for != wanted:
            raise RuntimeError(
                f"kafka: the storage in {lay.data(self.name)} was made for {made_for} clients, this stack runs "
                f"{wanted}: it has no users for every principal and will not be opened as it is. Keep its data "
                f"elsewhere if you need it, then remove that directory (`modelog engines down` first) and "
                f"start again for a fresh, secured storage.")

    def launch(self, lay: Layout) -> int:
        d = lay.data(self.name)
        d.mkdir(parents=True, exist_ok=True)
        lay.logs.mkdir(parents=True, exist_ok=True)
        self._write_config(lay)
        if (d / "data" / "meta.properties").exists():
            self._check_storage(lay)
        else:
            self._format(lay)
        return procs.start_detached(
            self._java(lay, "kafka.Kafka", str(d / "server.properties")),
            lay.log_file(self.name), lay.pid_file(self.name), cwd=d,
        )

    def ready(self, lay: Layout) -> bool:
        if not procs.port_open(self.port(lay)):
            return False
        run_sync(lambda: _list_topics(self.admin_endpoints(lay)))
        return True

    def provision(self, lay: Layout) -> None:
        if self.secured(lay):
            self._add_missing_users(lay)
        provision_kafka(self.admin_endpoints(lay))

    def _add_missing_users(self, lay: Layout) -> None:
        """SCRAM users for the PRINCIPALS this storage was formatted without,
        added as the admin once the broker runs; each is waited for until it
        authenticates, so no service starts to be refused."""
        d = lay.data(self.name)
        missing = missing_principals(d, PRINCIPALS)
        if not missing:
            return
        lay.report(f"kafka: the storage has no SCRAM users for {', '.join(missing)}; adding them as {LOCAL_KAFKA_ADMIN}")
        secrets, admin = LocalSecrets(lay.home), self.admin_endpoints(lay)
        add_scram_users(lambda *args: self._java(lay, *args), lay.endpoints.kafka_bootstrap, d,
                        admin.kafka_credentials().password, admin.kafka_ca(),
                        {principal: secrets.password(self.name, principal) for principal in missing})
        for principal in missing:
            # The controller has the user once ConfigCommand returns; the
            # broker's own view of it follows a moment later.
            endpoints = admin.model_copy(update={"kafka_username": principal,
                                                 "kafka_password": SecretStr(secrets.password(self.name, principal))})
            wait_until(lambda: _authenticates(endpoints), 30.0, f"kafka: the new SCRAM user {principal}")
        record_principals(d, [*principals_of(d), *missing])

    def service_env(self, lay: Layout, service: str) -> dict[str, str]:
        if service not in PRINCIPALS or service == LOCAL_KAFKA_ADMIN or not self.secured(lay):
            return {}
        secrets = LocalSecrets(lay.home)
        return {
            "MODELOG_KAFKA_USERNAME": service,
            "MODELOG_KAFKA_PASSWORD_FILE": str(secrets.password_file(self.name, service)),
            "MODELOG_KAFKA_PASSWORD": "",  # blanks a caller's inline password, which would win
            "MODELOG_KAFKA_CA_FILE": str(ensure_server_certificate(secrets, self.name).ca),
        }


def _write_private(path: Path, text: str) -> None:
    """Private from its first byte, not chmod-ed after; rewritten whole at every start."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
