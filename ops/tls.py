"""The stack's own certificate authority and the server certificate of its exposed address.

``ops`` makes one CA per stack, once, in the stack's state folder (its key 0600, never printed):
participants install its certificate on their laptops once, and every certificate the stack
issues later (a new address, a renewal) is trusted without installing anything again. The CA is
name-constrained to the private networks (RFC 1918, shared address space, link-local, unique
local IPv6), the exposed address's own network, and names under ``.local``: a CA key that leaked
could not be used to impersonate a site on the internet.

The server certificate names the exposed address (an IP SAN; browsers ignore the subject) and the
machine's ``<hostname>.local``; it is issued again when the address changes, when the CA changed,
or :data:`RENEW_BEFORE` before it expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ops.errors import OpsError
from ops.private import FILE_MODE, open_private, private_dir

#: A CA lives ten years: laptops install it once per workshop machine, not once per workshop.
CA_DAYS = 3650
#: Server certificates live a year and are issued again a month before they end.
SERVER_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
#: Networks the CA may issue for (besides the exposed address's own network).
PRIVATE_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
)
#: DNS names the CA may issue for: mDNS names (``laptop.local``).
PERMITTED_DNS = "local"
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Authority:
    """The stack's CA as participants see it: the files to install and the fingerprint to compare."""

    #: PEM (Linux, Firefox, Python's ``verify=``).
    certificate: Path
    #: The same certificate in DER, named ``.crt``: a double-click installs it on Windows and macOS.
    der: Path
    #: SHA-256 of the DER certificate, as colon-separated hex (what browsers and ``openssl -fingerprint`` show).
    fingerprint: str
    #: base64 SHA-256 of the certificate's public key (Chromium's ``--ignore-certificate-errors-spki-list``).
    spki_sha256: str


@dataclass(frozen=True)
class ServerCertificate:
    """The certificate the stack's TLS listeners present, with the key it was issued for."""

    certificate: Path  # the leaf followed by the CA, PEM
    key: Path
    address: str
    not_after: dt.datetime
    #: SHA-256 of the leaf (a new one means listeners must load it: the host restarts).
    fingerprint: str
    #: True when this call issued it (first time, address changed, CA changed, expiring).
    issued: bool = False


def tls_dir(root: Path) -> Path:
    """The folder under a stack's state folder that holds the CA and server certificate."""
    return root / "tls"


def ensure_authority(root: Path) -> Authority:
    """The CA of the stack whose state folder is ``root``, created the first time (never replaced)."""
    folder = private_dir(tls_dir(root))
    cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
    if not (cert_path.exists() and key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _new_ca(key, root.name)
        _write(key_path, _key_pem(key))
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    cert = _load_cert(cert_path)
    der = folder / "ca.crt"
    der_bytes = cert.public_bytes(serialization.Encoding.DER)
    if not der.exists() or der.read_bytes() != der_bytes:
        _write(der, der_bytes, mode=0o644)
    return authority_of(cert_path)


def authority_of(cert_path: Path) -> Authority:
    """What :func:`ensure_authority` returns, for a CA certificate that exists (read only)."""
    cert = _load_cert(cert_path)
    return Authority(cert_path, cert_path.with_suffix(".crt"), fingerprint(cert), spki_sha256(cert))


def ensure_server_certificate(root: Path, address: str, now: dt.datetime | None = None) -> ServerCertificate:
    """The server certificate for ``address``: kept while it names ``address``, was issued by the
    current CA and has more than :data:`RENEW_BEFORE` left; issued again otherwise."""
    ensure_authority(root)
    folder = tls_dir(root)
    now = now or dt.datetime.now(dt.UTC)
    ca_cert = _load_cert(folder / "ca.pem")
    ca_key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # ensure_authority makes only EC keys
    cert_path, key_path = folder / "server.pem", folder / "server-key.pem"
    current = _load_cert(cert_path) if cert_path.exists() and key_path.exists() else None
    if current is not None and _still_good(current, ca_cert, address, now):
        return ServerCertificate(
            cert_path, key_path, address, current.not_valid_after_utc, fingerprint(current)
        )
    if not _permits(ca_cert, ipaddress.ip_address(address)):
        raise OpsError(
            f"the stack's CA may not issue a certificate for {address}: it was made for other networks",
            hint=f"delete {folder} to make a new CA (participants then install the new one)",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _new_server(key, ca_key, ca_cert, address, now)
    _write(key_path, _key_pem(key))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    _write(cert_path, chain)
    return ServerCertificate(cert_path, key_path, address, cert.not_valid_after_utc, fingerprint(cert), True)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of ``cert`` as ``AB:CD:...`` (the form browsers and ``openssl x509 -fingerprint`` show)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def spki_sha256(cert: x509.Certificate) -> str:
    """base64 SHA-256 of ``cert``'s SubjectPublicKeyInfo (DER), as Chromium's SPKI lists want it."""
    import base64

    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def local_name() -> str | None:
    """``<hostname>.local`` when the host name is a valid DNS label, else ``None``."""
    label = socket.gethostname().split(".")[0].lower()
    return f"{label}.local" if _LABEL.match(label) else None


def _still_good(cert: x509.Certificate, ca_cert: x509.Certificate, address: str, now: dt.datetime) -> bool:
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    return ipaddress.ip_address(address) in sans.get_values_for_type(x509.IPAddress)


def _new_ca(key: ec.EllipticCurvePrivateKey, stack: str) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ops workshop"),
            # Unique per CA: two stacks' CAs installed on one laptop are told apart.
            x509.NameAttribute(NameOID.COMMON_NAME, f"ops {stack} CA {os.urandom(4).hex()}"),
        ]
    )
    networks = [x509.IPAddress(ipaddress.ip_network(n)) for n in PRIVATE_NETWORKS]
    networks += [x509.IPAddress(n) for n in _own_networks() if not _covered(n)]
    constraints = x509.NameConstraints(
        permitted_subtrees=[*networks, x509.DNSName(PERMITTED_DNS)], excluded_subtrees=None
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    """Signatures (ECDSA), and certificates and CRLs for the CA only."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _new_server(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    address: str,
    now: dt.datetime,
) -> x509.Certificate:
    ip = ipaddress.ip_address(address)
    names: list[x509.GeneralName] = [x509.IPAddress(ip)]
    dns = local_name()
    if dns:
        names.append(x509.DNSName(dns))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _own_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of this machine's non-loopback addresses (psutil), e.g. a LAN on a public range."""
    import psutil

    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6) or not a.netmask:
                continue
            try:
                ip = ipaddress.ip_address(a.address.split("%")[0])
                net = ipaddress.ip_network(f"{ip}/{a.netmask}", strict=False)
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_unspecified):
                found.append(net)
    return found


def _covered(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    for text in PRIVATE_NETWORKS:
        private = ipaddress.ip_network(text)
        if private.version == net.version and net.subnet_of(private):  # type: ignore[arg-type]
            return True
    return False


def _permits(ca_cert: x509.Certificate, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return True
    nets = [g.value for g in constraints.permitted_subtrees or () if isinstance(g, x509.IPAddress)]
    return any(
        isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) and ip.version == n.version and ip in n
        for n in nets
    )


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write ``path`` atomically: 0600 (keys) or 0644 (certificates, which are public)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    if mode != FILE_MODE and os.name != "nt":
        os.chmod(tmp, mode)
    os.replace(tmp, path)
