"""SCRAM users for principals a Kafka storage was formatted without.

The local broker gets its SCRAM users when its storage is formatted. A stack
whose storage predates a new service principal (the sentinel's, say) would
start every service but that one, refused with invalid credentials; its data
must not be lost to fix that. So, once the broker runs, the admin adds the
users the storage lacks, before any service starts.

Kafka's own ConfigCommand does it (AlterUserScramCredentials): aiokafka 0.14
has no request for that API, and hand-writing one, with the salting, would
be more code to trust than one JVM start on the rare start that needs it.
A marker beside the storage records the principals it has users for, so
every other start reads a file instead of paying for that JVM.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from modelog_platform.adapters.kafka_connection import SASL_MECHANISM
from modelog_platform.settings import LOCAL_KAFKA_ADMIN

PRINCIPALS_MARKER = "scram-principals"
# What every secured storage was formatted with before this marker existed
# (PRINCIPALS from the first secured stack until the sentinel's principal).
UNMARKED_PRINCIPALS = (LOCAL_KAFKA_ADMIN, "promoter", "registrar", "publisher", "projector", "auditor")


def principals_of(kafka_dir: Path) -> tuple[str, ...]:
    """The principals the storage under `kafka_dir` has SCRAM users for."""
    marker = kafka_dir / PRINCIPALS_MARKER
    return tuple(marker.read_text().split()) if marker.exists() else UNMARKED_PRINCIPALS


def missing_principals(kafka_dir: Path, wanted: Iterable[str]) -> list[str]:
    present = set(principals_of(kafka_dir))
    return [principal for principal in wanted if principal not in present]


def record_principals(kafka_dir: Path, principals: Iterable[str]) -> None:
    """Replaced whole: a start interrupted mid-write must not leave a marker
    that names fewer users than the storage has (or more)."""
    partial = kafka_dir / f"{PRINCIPALS_MARKER}.partial"
    partial.write_text("".join(f"{principal}\n" for principal in dict.fromkeys(principals)))
    partial.replace(kafka_dir / PRINCIPALS_MARKER)


def admin_properties(admin_password: str, ca: Path) -> str:
    """ConfigCommand's client: the admin over the stack's TLS and SCRAM.
    Local secrets are URL-safe base64, so nothing in them needs escaping."""
    return (
        "security.protocol=SASL_SSL\n"
        f"sasl.mechanism={SASL_MECHANISM}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{LOCAL_KAFKA_ADMIN}" password="{admin_password}";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={ca}\n"
    )


def add_scram_users(java: Callable[..., list[str]], bootstrap: str, kafka_dir: Path,
                    admin_password: str, ca: Path, passwords: dict[str, str]) -> None:
    """Give each principal of `passwords` a SCRAM user with that password, as
    the admin. Upserts: a user that exists gets the same password salted anew.

    Every password goes through a file readable by this user only, in a
    private directory removed afterwards (--add-config-file rather than
    --add-config): none is on a command line, even for the seconds it runs."""
    with tempfile.TemporaryDirectory(dir=kafka_dir, prefix=".scram-") as tmp:
        admin = Path(tmp) / "admin.properties"
        _write_private(admin, admin_properties(admin_password, ca))
        for principal, password in passwords.items():
            # A properties file's values are taken as they are: no brackets
            # around the credential, as --add-config would strip them.
            config = Path(tmp) / f"{principal}.properties"
            _write_private(config, f"{SASL_MECHANISM}=password={password}\n")
            done = subprocess.run(
                java("kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap, "--command-config", str(admin),
                     "--alter", "--add-config-file", str(config), "--entity-type", "users", "--entity-name", principal),
                capture_output=True, text=True,
            )
            if done.returncode != 0:
                output = (done.stdout + done.stderr).replace(password, "***").replace(admin_password, "***")
                raise RuntimeError(f"kafka: adding the SCRAM user {principal} failed\n{output}")


def _write_private(path: Path, text: str) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
