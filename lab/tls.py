"""The lab's certificate authority and the mirror's certificate, so that the mirror speaks https as FreeBSD's do.

A deploy accepts https mirrors only, and FreeBSD's fetch(1) verifies the peer against the system's trust store
(/etc/ssl/cert.pem, /etc/ssl/certs). The lab plays both sides: it makes one CA for the lab directory, signs a
certificate for the mirror's address with it, and every lab host trusts that CA as an operator trusts a
provider's internal CA. A certificate from any other CA (or none) is refused by the lab host's fetch.
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab import paths

VALID = datetime.timedelta(days=3650)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "torjail lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path, data, mode):
    with open(os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as handle:
        handle.write(data)
    os.replace(path + ".new", path)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _sign(subject, issuer, public_key, signing_key, ca, san=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + VALID)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def ensure_mirror_certificate():
    """Make the CA and the mirror's certificate once per lab directory; return the CA's PEM path."""
    ca_path = paths.mirror_ca_path()
    cert_path, key_path = paths.mirror_certificate_paths()
    if all(os.path.exists(path) for path in (ca_path, cert_path, key_path)):
        return ca_path
    os.makedirs(paths.lab_dir(), exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _sign(_name("torjail lab CA"), _name("torjail lab CA"), ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(_name(paths.MIRROR_ADDRESS), ca.subject, key.public_key(), ca_key, ca=False,
                 san=[x509.IPAddress(ipaddress.ip_address(paths.MIRROR_ADDRESS))])
    _write(key_path, _pem_key(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(ca_path, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    return ca_path
