"""The API over TLS: a certificate and key given by the user, checked before the daemon serves
anything, or a self-signed pair made once in the state folder (``--https``) and kept until it
expires. Either way the certificate's SHA-256 fingerprint is what the daemon prints at start, as
``openssl x509 -fingerprint -sha256`` shows it, so a user can compare what a browser shows."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError

__all__ = ["SELF_SIGNED_CERT", "SELF_SIGNED_KEY", "TlsError", "TlsFiles", "fingerprint", "load_tls",
           "self_signed", "served_names"]

log = logging.getLogger(__name__)

SELF_SIGNED_CERT = "tls-cert.pem"  # in the state folder (--https)
SELF_SIGNED_KEY = "tls-key.pem"  # (mode 0600)
# 825 days: the longest a TLS server certificate may live for Apple's platforms
SELF_SIGNED_DAYS = 825
WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # every interface: no name of its own


class TlsError(ConfigError):
    """The TLS certificate or key cannot be used; the message names the flag (or file) and why."""

    def __init__(self, message: str, flag: str) -> None:
        Exception.__init__(self, f"{flag}: {message}")
        self.reason = message
        self.field = flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class TlsFiles:
    """What uvicorn serves with: the certificate (PEM, its chain after it), the key, and the
    certificate's fingerprint; ``self_signed``: the daemon's own pair (``--https``), ``made``:
    made at this start."""

    certfile: Path
    keyfile: Path
    fingerprint: str
    not_after: dt.datetime
    self_signed: bool = False
    made: bool = False


def fingerprint(cert: x509.Certificate) -> str:
    """``AB:CD:...``: the SHA-256 of the certificate's DER, as openssl prints it."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _read(path: Path, flag: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the {what} {str(path)!r}: {exc.strerror or exc}", flag) from None


def _leaf(data: bytes, path: Path, flag: str) -> x509.Certificate:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TlsError(f"{str(path)!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", flag)
    return certs[0]


def load_tls(certfile: Path, keyfile: Path, *, cert_flag: str = "--tls-cert",
             key_flag: str = "--tls-key", self_signed: bool = False) -> TlsFiles:
    """Check that ``certfile`` and ``keyfile`` are a PEM certificate (its chain may follow) and
    its unencrypted private key, as the server will load them; ``TlsError`` naming the flag."""
    cert = _leaf(_read(certfile, cert_flag, "certificate"), certfile, cert_flag)
    key_data = _read(keyfile, key_flag, "key")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise TlsError(f"the key {str(keyfile)!r} is encrypted: give it without a passphrase "
                       "(openssl pkey -in KEY -out PLAIN)", key_flag) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError(f"{str(keyfile)!r} holds no PEM private key", key_flag) from None
    if key.public_key().public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo) != \
            cert.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo):
        raise TlsError(f"the key {str(keyfile)!r} does not match the certificate {str(certfile)!r}", key_flag)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # as uvicorn will load them
    try:
        context.load_cert_chain(str(certfile), str(keyfile))
    except ssl.SSLError as exc:
        raise TlsError(f"{str(certfile)!r} with {str(keyfile)!r} cannot serve TLS: {exc.reason or exc}",
                       cert_flag) from None
    not_after = cert.not_valid_after_utc
    if not self_signed and not_after <= dt.datetime.now(dt.UTC):
        log.warning("the TLS certificate %s expired on %s: clients will refuse it", certfile,
                    not_after.isoformat())
    return TlsFiles(certfile, keyfile, fingerprint(cert), not_after, self_signed)


def served_names(api_host: str, allowed_hosts: Iterable[str] = ()) -> list[str]:
    """The names a self-signed certificate is made for: localhost and the loopback addresses,
    the API's address unless it is every interface's, and the other Host names it answers."""
    out = ["localhost", "127.0.0.1", "::1"]
    for name in (api_host.strip("[]"), *allowed_hosts):
        name = name.strip().lower().rstrip(".")
        if name not in WILDCARD_HOSTS and name not in out:
            out.append(name)
    return out


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # (whatever the umask or an older file said)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _generate(certfile: Path, keyfile: Path, names: list[str], now: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "torrent-engine (self-signed)")])
    public = key.public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))  # (a client's clock a little behind)
            .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(_san(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    # the key first: a certificate is never left without its key
    _write(keyfile, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()), 0o600)
    _write(certfile, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def self_signed(state_dir: Path, names: list[str], *, now: dt.datetime | None = None) -> TlsFiles:
    """``--https``: the self-signed certificate and key in ``state_dir``, made (ECDSA P-256, for
    ``names``) when either is missing or the certificate has expired, else the same pair again;
    ``TlsError`` when a file there cannot be used (it is never overwritten then)."""
    now = now or dt.datetime.now(dt.UTC)
    certfile, keyfile = state_dir / SELF_SIGNED_CERT, state_dir / SELF_SIGNED_KEY
    made = False
    if not (certfile.exists() and keyfile.exists()):
        state_dir.mkdir(parents=True, exist_ok=True)
        _generate(certfile, keyfile, names, now)
        made = True
        log.info("made a self-signed TLS certificate for %s in %s", ", ".join(names), certfile)
    else:
        cert = _leaf(_read(certfile, "--https", "certificate"), certfile, "--https")
        if cert.not_valid_after_utc <= now:
            log.warning("the self-signed TLS certificate %s expired on %s: making a new one", certfile,
                        cert.not_valid_after_utc.isoformat())
            _generate(certfile, keyfile, names, now)
            made = True
        else:
            try:
                held = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
            except x509.ExtensionNotFound:
                held = set()
            missing = [n for n in names if not any(e in held for e in _san([n]))]
            if missing:
                log.warning("the self-signed TLS certificate %s does not name %s: delete it (and %s) to "
                            "make one that does", certfile, ", ".join(missing), keyfile.name)
        if keyfile.stat().st_mode & 0o077:
            os.chmod(keyfile, 0o600)
    files = load_tls(certfile, keyfile, cert_flag="--https", key_flag="--https", self_signed=True)
    return TlsFiles(files.certfile, files.keyfile, files.fingerprint, files.not_after, True, made)
