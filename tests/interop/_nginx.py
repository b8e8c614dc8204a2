"""Start a real nginx (Debian's) on 127.0.0.1 for a test: its own config in the test's folder,
serving one document root, with an access log that records each request's Range."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import _missing


@dataclass
class Nginx:
    port: int
    folder: Path
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/"

    def requests(self) -> list[str]:
        """The access log: one '<connection> <status> "<request line>" <Range>' per request."""
        log = self.folder / "access.log"
        return log.read_text().splitlines() if log.exists() else []


def nginx_program() -> str:
    """nginx from PATH or Debian's /usr/sbin; skip (or fail in CI) when it is missing."""
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if path is None:
        _missing("program 'nginx'")
    assert path is not None
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), valid for a day: (cert.pem, key.pem)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _config(folder: Path, root: Path, port: int, limit_rate: str, tls: bool) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""  # (as root, do not drop to 'nobody')
    temp = "".join(f"  {kind}_temp_path {folder / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"{user}daemon off;\nmaster_process off;\nworker_processes 1;\n"
        f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "  log_format ranges '$connection $status \"$request\" $http_range';\n"
        f"  access_log {folder / 'access.log'} ranges;\n"
        f"{temp}"
        "  default_type application/octet-stream;\n"
        "  keepalive_requests 1000;\n"
        f"  limit_rate {limit_rate};\n"
        f"  server {{\n    listen 127.0.0.1:{port}{' ssl' if tls else ''};\n    root {root};\n"
        + (f"    ssl_certificate {folder / 'cert.pem'};\n    ssl_certificate_key {folder / 'key.pem'};\n"
           if tls else "")
        + "  }\n"
        "}\n"
    )


@contextmanager
def nginx(folder: Path, root: Path, *, limit_rate: str = "0", tls: bool = False) -> Iterator[Nginx]:
    """nginx serving ``root`` on a free loopback port until the block ends (``limit_rate``: its
    per-connection rate limit, e.g. "1m"; "0" for none). ``tls``: HTTPS with a self-signed
    certificate for 127.0.0.1, written to ``folder/cert.pem``."""
    program = nginx_program()
    folder.mkdir(parents=True, exist_ok=True)
    if tls:
        self_signed_certificate(folder)
    for _attempt in range(5):  # a probed free port may be taken before nginx binds it
        server = Nginx(_free_port(), folder, tls)
        conf = folder / "nginx.conf"
        conf.write_text(_config(folder, root, server.port, limit_rate, tls))
        with (folder / "stderr").open("wb") as err:
            process = subprocess.Popen([program, "-p", str(folder), "-c", str(conf), "-e", "stderr"],
                                       stdout=err, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        up = False
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                up = True
                break
            except OSError:
                time.sleep(0.05)
        if up:
            break
        process.kill()
        process.wait(5)
    else:
        pytest.fail("nginx did not start: " + (folder / "stderr").read_text()[-2000:])
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
