"""The local stack's own certificate authority and the engines' server certificates.

`modelog engines up` makes a CA under <home>/secrets/tls/ and a certificate
per engine for 127.0.0.1 and localhost, signed by it; clients trust that CA
alone (MODELOG_*_CA_FILE). A deployment brings its own CA and certificates.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from modelog_platform.engines.secrets import LocalSecrets, write_private

VALID_FOR = datetime.timedelta(days=3650)
HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerCertificate:
    certificate: Path  # PEM: the server's certificate, then the CA's
    key: Path          # PEM: its private key, unencrypted, readable by this user only
    ca: Path           # PEM: the CA every client trusts


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "modelog local stack"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_ca(secrets: LocalSecrets) -> tuple[Path, Path]:
    """The CA's certificate and key files, made unless both exist."""
    directory = secrets.directory("tls")
    cert_file, key_file = directory / "ca.pem", directory / "ca.key"
    if cert_file.exists() and key_file.exists():
        return cert_file, key_file
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("modelog local CA")).issuer_name(_name("modelog local CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    write_private(key_file, _pem_key(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def ensure_server_certificate(secrets: LocalSecrets, engine: str) -> ServerCertificate:
    """`engine`'s certificate for this machine's loopback names, signed by the local CA."""
    ca_file, ca_key_file = ensure_ca(secrets)
    directory = secrets.directory("tls")
    cert_file, key_file = directory / f"{engine}.pem", directory / f"{engine}.key"
    if not (cert_file.exists() and key_file.exists()):
        ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in HOSTS]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]
        cert = (x509.CertificateBuilder().subject_name(_name(f"modelog {engine}")).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        write_private(key_file, _pem_key(key))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_file.read_bytes())
    return ServerCertificate(cert_file, key_file, ca_file)
