"""Kafka 4.x in KRaft mode: one combined broker+controller on the machine's Java.

Jars come from Maven Central via deploy/kafka/pom.xml into the cache; the
broker's config, log directory and logs live under home/kafka and home/logs.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine, run_sync
from modelog_platform.engines.layout import Layout, deploy_dir, port_of
from modelog_platform.settings import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, DENIALS_TOPIC, EVENTS_TOPIC, EngineEndpoints

TOPIC_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "-1"}
# The broker stamps each command with the time it appended it: the promoter
# judges a command's token at that time, which no publisher can backdate.
COMMAND_TOPIC_CONFIGS = {**TOPIC_CONFIGS, "message.timestamp.type": "LogAppendTime"}
TOPIC_ALREADY_EXISTS = 36


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
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, partitions, 1, topic_configs=configs)
            for name, partitions, configs in ((COMMANDS_TOPIC, endpoints.topic_partitions, COMMAND_TOPIC_CONFIGS),
                                              (EVENTS_TOPIC, endpoints.topic_partitions, TOPIC_CONFIGS),
                                              (DEAD_LETTERS_TOPIC, 1, TOPIC_CONFIGS),
                                              (DENIALS_TOPIC, endpoints.topic_partitions, TOPIC_CONFIGS))
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


async def _list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


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

    def _write_config(self, lay: Layout) -> None:
        d = lay.data(self.name)
        port, cport = self.port(lay), lay.stack.kafka_controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # 4.x dynamic quorum: the storage is formatted with --standalone.
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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
        }
        (d / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
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

    def launch(self, lay: Layout) -> int:
        d = lay.data(self.name)
        d.mkdir(parents=True, exist_ok=True)
        lay.logs.mkdir(parents=True, exist_ok=True)
        self._write_config(lay)
        if not (d / "data" / "meta.properties").exists():
            # Passed as --cluster-id=ID: an id starting with '-' (base64url allows
            # it) would otherwise be read as an option and the format fails.
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = subprocess.run(
                self._java(lay, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                           "-c", str(d / "server.properties"), "--standalone"),
                capture_output=True, text=True,
            )
            if fmt.returncode != 0:
                raise RuntimeError(f"kafka: formatting storage failed\n{fmt.stdout}{fmt.stderr}")
        return procs.start_detached(
            self._java(lay, "kafka.Kafka", str(d / "server.properties")),
            lay.log_file(self.name), lay.pid_file(self.name), cwd=d,
        )

    def ready(self, lay: Layout) -> bool:
        if not procs.port_open(self.port(lay)):
            return False
        run_sync(lambda: _list_topics(lay.endpoints.kafka_bootstrap))
        return True

    def provision(self, lay: Layout) -> None:
        provision_topics(lay.endpoints)
