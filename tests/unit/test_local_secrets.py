"""The local stack's secrets and certificates: private, stable, and verifiable."""

import socket
import ssl
import stat
import threading

from modelog_platform.engines.secrets import LocalSecrets
from modelog_platform.engines.tls import ensure_server_certificate


def test_a_password_is_made_once_and_kept_private(tmp_path):
    secrets = LocalSecrets(tmp_path)
    first = secrets.password("kafka", "registrar")
    assert secrets.password("kafka", "registrar") == first
    assert secrets.password("kafka", "promoter") != first
    mode = stat.S_IMODE(secrets.password_file("kafka", "registrar").stat().st_mode)
    assert mode == 0o600


def test_an_engine_certificate_passes_tls_verification_against_the_local_ca_only(tmp_path):
    cert = ensure_server_certificate(LocalSecrets(tmp_path), "kafka")
    assert stat.S_IMODE(cert.key.stat().st_mode) == 0o600
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert.certificate, cert.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    trusting = ssl.create_default_context(cafile=cert.ca)
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            trusting.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.getpeercert()["subject"][-1] == (("commonName", "modelog kafka"),)
    other = ensure_server_certificate(LocalSecrets(tmp_path / "elsewhere"), "kafka")
    stranger = ssl.create_default_context(cafile=other.ca)
    with socket.create_connection(("127.0.0.1", port)) as raw:
        try:
            stranger.wrap_socket(raw, server_hostname="127.0.0.1")
            raise AssertionError("a certificate from another CA was accepted")
        except ssl.SSLCertVerificationError:
            pass
    listener.close()
