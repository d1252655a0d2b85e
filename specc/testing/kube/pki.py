"""Certificates and keys for a throw-away control plane, made with the ``openssl`` command.

One CA signs the API server's serving certificate (for 127.0.0.1 and the in-cluster
names) and the client certificates of the admin (group ``system:masters``) and the
controller manager. A separate ECDSA key signs ServiceAccount tokens. Everything is
made fresh for each start, so no two runs share a credential.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from specc.testing.kube.binaries import BuildUnavailable

_CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_DAYS = ["-days", "30"]
SERVER_NAMES = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Pki:
    """Paths of the files :func:`make_pki` writes."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca.crt")

    @property
    def ca_key(self) -> Path:
        return self.path("ca.key")

    @property
    def server_cert(self) -> Path:
        return self.path("apiserver.crt")

    @property
    def server_key(self) -> Path:
        return self.path("apiserver.key")

    @property
    def service_account_key(self) -> Path:
        return self.path("service-account.key")

    def client(self, user: str) -> tuple[Path, Path]:
        """Return the certificate and key of a client made by :func:`make_pki`."""
        return self.path(f"{user}.crt"), self.path(f"{user}.key")


#: Client certificates: file stem, common name (the user), organisation (its group).
CLIENTS = (
    ("admin", "specc-admin", "system:masters"),
    ("controller-manager", "system:kube-controller-manager", ""),
)


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BuildUnavailable("the openssl command is not installed (it makes the test PKI)")
    result = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildUnavailable(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_pki(directory: Path) -> Pki:
    """Write a CA, a serving certificate, client certificates and the token key; return them."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    _openssl(
        "req", "-x509", *_CURVE, *_DAYS,
        "-keyout", str(pki.ca_key), "-out", str(pki.ca_cert),
        "-subj", "/CN=specc-testenv-ca",
    )  # fmt: skip
    signed = ["-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key)]
    _openssl(
        "req", "-x509", *_CURVE, *_DAYS, *signed,
        "-keyout", str(pki.server_key), "-out", str(pki.server_cert),
        "-subj", "/CN=kube-apiserver",
        "-addext", "subjectAltName=" + ",".join(SERVER_NAMES),
        "-addext", "extendedKeyUsage=serverAuth",
        "-addext", "basicConstraints=critical,CA:FALSE",
    )  # fmt: skip
    for stem, user, group in CLIENTS:
        cert, key = pki.client(stem)
        subject = f"/CN={user}" + (f"/O={group}" if group else "")
        _openssl(
            "req", "-x509", *_CURVE, *_DAYS, *signed,
            "-keyout", str(key), "-out", str(cert), "-subj", subject,
            "-addext", "extendedKeyUsage=clientAuth",
            "-addext", "basicConstraints=critical,CA:FALSE",
        )  # fmt: skip
    _openssl(
        "ecparam", "-name", "prime256v1", "-genkey", "-noout",
        "-out", str(pki.service_account_key),
    )  # fmt: skip
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    return pki
