"""The stack's CA and server certificate: made once, private keys 0600, issued again only when needed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ops import tls
from ops.errors import OpsError


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "stacks" / "lan"
    folder.mkdir(parents=True)
    return folder


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_ca_is_made_once_with_a_private_key_and_a_der_copy(root):
    first = tls.ensure_authority(root)
    again = tls.ensure_authority(root)
    assert first == again
    folder = tls.tls_dir(root)
    assert mode(folder / "ca-key.pem") == 0o600 and mode(folder) == 0o700
    assert mode(first.certificate) == 0o644
    cert = load(first.certificate)
    assert x509.load_der_x509_certificate(first.der.read_bytes()) == cert
    assert first.der.suffix == ".crt"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0


def test_the_fingerprint_is_the_sha256_of_the_certificate(root):
    authority = tls.ensure_authority(root)
    cert = load(authority.certificate)
    expected = cert.fingerprint(hashes.SHA256()).hex().upper()
    assert authority.fingerprint.replace(":", "") == expected
    assert len(authority.fingerprint.split(":")) == 32
    # What openssl, and so the README's check on a laptop, prints for the same file.
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(authority.certificate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().split("=", 1)[1] == authority.fingerprint


def test_the_ca_is_name_constrained_to_private_networks_and_this_machines_own(root):
    cert = load(tls.ensure_authority(root).certificate)
    ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical
    permitted = ext.value.permitted_subtrees
    nets = {str(g.value) for g in permitted if isinstance(g, x509.IPAddress)}
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"} <= nets
    # This machine's LAN (192.0.2.2/24 on eth0) is a documentation range, not a private one: added.
    assert any(ipaddress.ip_address("192.0.2.2") in ipaddress.ip_network(n) for n in nets)
    assert "8.8.8.0/24" not in nets and not any(
        ipaddress.ip_address("8.8.8.8") in ipaddress.ip_network(n) for n in nets
    )
    assert [g.value for g in permitted if isinstance(g, x509.DNSName)] == ["local"]


def test_the_server_certificate_names_the_address_and_verifies_against_the_ca(root):
    authority = tls.ensure_authority(root)
    cert = tls.ensure_server_certificate(root, "192.0.2.2")
    assert cert.issued and mode(cert.key) == 0o600
    leaf = load(cert.certificate)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.2")]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    # OpenSSL checks the chain, the IP and the CA's name constraints.
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(authority.certificate),
            "-verify_ip",
            "192.0.2.2",
            str(cert.certificate),
        ],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    wrong = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(authority.certificate),
            "-verify_ip",
            "192.0.2.3",
            str(cert.certificate),
        ],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0
    # Python's ssl loads the chain file and key as the TLS listeners do.
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert.certificate, cert.key)


def test_the_server_certificate_is_kept_until_the_address_changes(root):
    first = tls.ensure_server_certificate(root, "192.0.2.2")
    kept = tls.ensure_server_certificate(root, "192.0.2.2")
    assert not kept.issued and kept.fingerprint == first.fingerprint
    moved = tls.ensure_server_certificate(root, "192.168.1.20")
    assert moved.issued and moved.fingerprint != first.fingerprint
    sans = load(moved.certificate).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.1.20")]
    # The CA stays: laptops that installed it trust the new certificate too.
    assert (
        tls.ensure_authority(root).fingerprint == tls.authority_of(tls.tls_dir(root) / "ca.pem").fingerprint
    )


def test_the_server_certificate_is_issued_again_near_its_end(root):
    first = tls.ensure_server_certificate(root, "192.0.2.2")
    later = (
        dt.datetime.now(dt.UTC) + dt.timedelta(days=tls.SERVER_DAYS) - tls.RENEW_BEFORE + dt.timedelta(days=1)
    )
    renewed = tls.ensure_server_certificate(root, "192.0.2.2", now=later)
    assert renewed.issued and renewed.not_after > first.not_after


def test_a_new_ca_means_a_new_server_certificate(root):
    first = tls.ensure_server_certificate(root, "192.0.2.2")
    for name in ("ca.pem", "ca-key.pem"):
        (tls.tls_dir(root) / name).unlink()
    again = tls.ensure_server_certificate(root, "192.0.2.2")
    assert again.issued and again.fingerprint != first.fingerprint


def test_an_address_outside_the_cas_networks_is_refused(root):
    tls.ensure_authority(root)
    with pytest.raises(OpsError, match="may not issue a certificate for 8.8.8.8") as caught:
        tls.ensure_server_certificate(root, "8.8.8.8")
    assert "new CA" in (caught.value.hint or "")
