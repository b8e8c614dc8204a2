"""The API's TLS files: the self-signed pair of ``--https`` made once (names, key mode, a
fingerprint as openssl prints it), kept, made again only when missing or expired; a given pair
checked at start with an error naming the flag; the daemon's TLS flags that do not go together."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import require_program
from torrent_engine.api.tls import (
    SELF_SIGNED_CERT,
    SELF_SIGNED_KEY,
    TlsError,
    load_tls,
    self_signed,
    served_names,
)
from torrent_engine.cli import build_parser
from torrent_engine.cli.daemon import check_tls_flags, tls_files
from torrent_engine.errors import ConfigError


def test_the_self_signed_pair_is_made_once_and_kept(tmp_path: Path) -> None:
    names = served_names("nas.home", ["seedbox.lan"])
    assert names == ["localhost", "127.0.0.1", "::1", "nas.home", "seedbox.lan"]
    first = self_signed(tmp_path, names)
    assert first.made and first.self_signed
    assert (first.certfile, first.keyfile) == (tmp_path / SELF_SIGNED_CERT, tmp_path / SELF_SIGNED_KEY)
    assert stat.S_IMODE(first.keyfile.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(first.certfile.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "nas.home", "seedbox.lan"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                       ipaddress.ip_address("::1")]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    # what `openssl x509 -fingerprint -sha256` prints
    openssl = require_program("openssl")
    out = subprocess.run([openssl, "x509", "-in", str(first.certfile), "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().split("=", 1)[1] == first.fingerprint
    again = self_signed(tmp_path, names)
    assert not again.made and again.fingerprint == first.fingerprint
    assert first.certfile.read_bytes() == cert.public_bytes(serialization.Encoding.PEM)


def test_a_wildcard_api_host_adds_no_name() -> None:
    assert served_names("0.0.0.0") == served_names("::") == ["localhost", "127.0.0.1", "::1"]
    assert served_names("[fd00::5]") == ["localhost", "127.0.0.1", "::1", "fd00::5"]


def test_an_expired_or_missing_pair_is_made_again(tmp_path: Path) -> None:
    names = served_names("127.0.0.1")
    old = self_signed(tmp_path, names, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=900))
    assert old.not_after < dt.datetime.now(dt.UTC)
    renewed = self_signed(tmp_path, names)
    assert renewed.made and renewed.fingerprint != old.fingerprint
    assert renewed.not_after > dt.datetime.now(dt.UTC) + dt.timedelta(days=800)
    (tmp_path / SELF_SIGNED_KEY).unlink()  # a certificate without its key is of no use
    remade = self_signed(tmp_path, names)
    assert remade.made and remade.fingerprint != renewed.fingerprint


def test_a_broken_self_signed_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    self_signed(tmp_path, served_names("127.0.0.1"))
    (tmp_path / SELF_SIGNED_CERT).write_text("not a certificate\n")
    with pytest.raises(TlsError, match=r"^--https: .*tls-cert.pem' holds no PEM certificate"):
        self_signed(tmp_path, served_names("127.0.0.1"))
    assert (tmp_path / SELF_SIGNED_CERT).read_text() == "not a certificate\n"


def _other_key(path: Path, *, password: bytes | None = None) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.write_bytes(pem)
    return path


def test_a_given_pair_is_checked_naming_the_flag(tmp_path: Path) -> None:
    pair = self_signed(tmp_path / "made", served_names("127.0.0.1"))
    good = load_tls(pair.certfile, pair.keyfile)
    assert good.fingerprint == pair.fingerprint and not good.self_signed
    with pytest.raises(TlsError, match=r"^--tls-cert: cannot read the certificate '.*nope.pem': No such"):
        load_tls(tmp_path / "nope.pem", pair.keyfile)
    with pytest.raises(TlsError, match=r"^--tls-key: cannot read the key '.*nope.key': No such file"):
        load_tls(pair.certfile, tmp_path / "nope.key")
    with pytest.raises(TlsError, match=r"^--tls-key: the key '.*other.key' does not match the certificate"):
        load_tls(pair.certfile, _other_key(tmp_path / "other.key"))
    with pytest.raises(TlsError, match=r"^--tls-key: the key '.*locked.key' is encrypted"):
        load_tls(pair.certfile, _other_key(tmp_path / "locked.key", password=b"secret"))
    with pytest.raises(TlsError, match=r"^--tls-key: '.*' holds no PEM private key"):
        load_tls(pair.certfile, pair.certfile)
    with pytest.raises(TlsError, match=r"^--tls-cert: '.*' holds no PEM certificate"):
        load_tls(pair.keyfile, pair.keyfile)
    # the chain may follow the certificate (a full chain file)
    chain = tmp_path / "fullchain.pem"
    chain.write_bytes(pair.certfile.read_bytes() + (tmp_path / "made" / SELF_SIGNED_CERT).read_bytes())
    assert load_tls(chain, pair.keyfile).fingerprint == pair.fingerprint
    assert issubclass(TlsError, ConfigError)


def _args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["daemon", *flags])


@pytest.mark.parametrize(("flags", "words"), [
    (("--tls-cert", "c.pem"), "--tls-cert: needs --tls-key"),
    (("--tls-key", "k.pem"), "--tls-key: needs --tls-cert"),
    (("--https", "--tls-cert", "c.pem", "--tls-key", "k.pem"), "--https: cannot go with --tls-cert"),
])
def test_flags_that_do_not_go_together(flags: tuple[str, ...], words: str) -> None:
    with pytest.raises(TlsError, match=f"^{words}"):
        check_tls_flags(_args(*flags))


def test_the_flags_pick_the_files(tmp_path: Path) -> None:
    assert tls_files(_args(), tmp_path) is None  # plain HTTP stays the default
    made = tls_files(_args("--https"), tmp_path)
    assert made is not None and made.self_signed
    given = tls_files(_args("--tls-cert", str(made.certfile), "--tls-key", str(made.keyfile)), tmp_path)
    assert given is not None and not given.self_signed and given.fingerprint == made.fingerprint
