"""k8s/components/alertmanager-gossip-tls live: two real Alertmanagers gossip over mutual TLS with the
component's file, and neither a peer in clear nor one whose certificate another CA signed joins them.

The certificates are made here, as the component's README makes them: one CA, and one certificate
for the name ``alertmanager-cluster`` that both replicas present, as server and as client.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml
from alerting import cluster, start_alertmanager
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from processes import ROOT, Server, free_port, metric_value, wait_until

pytestmark = pytest.mark.integration

COMPONENT = ROOT / "k8s" / "components" / "alertmanager-gossip-tls"
#: Where the component mounts the Secret alertmanager-gossip-tls.
MOUNTED = "/etc/alertmanager/gossip-tls"
MEMBERS = "alertmanager_cluster_members"


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Authority:
    """A CA of the gossip's own, issuing the certificate the replicas present as server and client."""

    def __init__(self, label: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name(f"{label} CA"))
            .issuer_name(name(f"{label} CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip

    def issue(
        self, directory: Path, server_name: str, lifetime: datetime.timedelta = datetime.timedelta(days=1)
    ) -> datetime.datetime:
        """Write the Secret's three keys (tls.crt, tls.key, ca.crt) into ``directory``: a new key and
        a certificate for ``server_name`` valid for ``lifetime``. Each file is replaced whole, as the
        kubelet swaps a mounted Secret's files. Returns when the certificate expires."""
        directory.mkdir(exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        expires = now + lifetime
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name(server_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(expires)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(server_name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        files = {
            "ca.crt": self.certificate.public_bytes(serialization.Encoding.PEM),
            "tls.key": key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            "tls.crt": certificate.public_bytes(serialization.Encoding.PEM),
        }
        for file_name, content in files.items():
            staged = directory / f".{file_name}"
            staged.write_bytes(content)
            os.replace(staged, directory / file_name)
        return expires


def make_certificates(directory: Path, server_name: str) -> Path:
    """A new CA, and a certificate it signs for ``server_name``, in ``directory``."""
    Authority(directory.name).issue(directory, server_name)
    return directory


def tls_config(certificates: Path) -> Path:
    """The component's file, reading the certificates from ``certificates`` instead of the mount."""
    text = (COMPONENT / "gossip-tls.yml").read_text()
    assert text.count(MOUNTED) == 6, "every file the component names is in the Secret's mount"
    path = certificates / "gossip-tls.yml"
    path.write_text(text.replace(MOUNTED, str(certificates)))
    return path


def gossiping(directory: Path, label: str, listen: int, peers: Sequence[int], tls: Path | None) -> Server:
    """An Alertmanager gossiping on ``listen`` with ``peers``, over ``tls`` if given, else in clear."""
    state = directory / label
    state.mkdir()
    config = state / "alertmanager.yml"
    config.write_text(yaml.safe_dump({"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]}))
    flags = [*cluster(listen, peers), *([f"--cluster.tls-config={tls}"] if tls else [])]
    return start_alertmanager(config, state, name=label, gossip=flags)


def gossiping_pair(directory: Path, servers: list[Server], tls: Sequence[Path]) -> list[int]:
    """Two replicas meshed over TLS, each on its file of ``tls``, once both count two members. Each
    is handed to ``servers`` as soon as it starts, so a failure after stops it too. Returns the two
    gossip ports."""
    mesh = [free_port(), free_port()]
    pair = []
    for index, (listen, config) in enumerate(zip(mesh, tls, strict=True)):
        pair.append(gossiping(directory, f"alertmanager-{index}", listen, mesh, config))
        servers.append(pair[-1])
    for server in pair:
        server.wait_for("/-/ready", seconds=60)
    wait_until(lambda: all(metric_value(server, MEMBERS) == 2 for server in pair))
    return mesh


def checked_server_name() -> str:
    """The name the component's file checks on a peer's certificate: the replicas' is issued for it."""
    return str(yaml.safe_load((COMPONENT / "gossip-tls.yml").read_text())["tls_client_config"]["server_name"])


def udp_ports_bound() -> set[int]:
    """The local ports of this machine's UDP sockets (IPv4 and IPv6), as the kernel lists them."""
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local_address = line.split()[1]
            ports.add(int(local_address.rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def test_the_replicas_gossip_over_mutual_tls_and_admit_no_other(
    tmp_path: Path, servers: list[Server]
) -> None:
    server_name = checked_server_name()
    ours = tls_config(make_certificates(tmp_path / "secret", server_name))
    # Another CA's certificate for the same name, and our CA's certificate, which is no secret: what
    # a pod of another team, or an attacker, may hold. Only the replicas' check of the client's
    # certificate keeps it out.
    another = make_certificates(tmp_path / "another-ca", server_name)
    (another / "ca.crt").write_bytes((ours.parent / "ca.crt").read_bytes())
    theirs = tls_config(another)
    mesh = gossiping_pair(tmp_path, servers, [ours, ours])
    pair = list(servers)

    # Over TLS memberlist sends its packets over TCP too: the component closes the UDP port.
    assert not udp_ports_bound() & set(mesh)

    in_clear = free_port()
    for label, listen, tls in (("in-clear", in_clear, None), ("signed-by-another-ca", free_port(), theirs)):
        servers.append(gossiping(tmp_path, label, listen, mesh, tls))
    intruders = servers[len(pair) :]
    for intruder in intruders:
        intruder.wait_for("/-/ready", seconds=60)
    # The same check sees the UDP socket a replica in clear opens.
    assert in_clear in udp_ports_bound()
    # Each tried to join at start-up and was refused: the TLS handshake fails, in either direction.
    wait_until(lambda: all("failed to join cluster" in intruder.log.read_text() for intruder in intruders))
    assert [metric_value(intruder, MEMBERS) for intruder in intruders] == [1, 1]
    assert [metric_value(server, MEMBERS) for server in pair] == [2, 2]


def test_a_renewed_certificate_is_used_without_a_restart(tmp_path: Path, servers: list[Server]) -> None:
    """cert-manager renews the Secret before the certificate expires and the kubelet swaps the
    mounted files: the running replicas must present and accept the new one, or gossip would stop
    at the old one's expiry until someone restarts them."""
    server_name = checked_server_name()
    authority = Authority("gossip")
    mounts = [tmp_path / f"secret-{index}" for index in range(2)]
    expiry = max(authority.issue(mount, server_name, datetime.timedelta(seconds=20)) for mount in mounts)
    mesh = gossiping_pair(tmp_path, servers, [tls_config(mount) for mount in mounts])

    for mount in mounts:
        authority.issue(mount, server_name)
    # Past the first certificates' expiry, a third replica joins through the two running ones: each
    # handshake needs their renewed certificate. Had they kept the first in memory, the join would
    # fail with "certificate has expired" (checked by hand: a pair left unrenewed refuses it so).
    time.sleep(max(0.0, (expiry - datetime.datetime.now(datetime.UTC)).total_seconds()) + 1)
    newcomer = authority.issue(tmp_path / "secret-2", server_name)
    assert newcomer > datetime.datetime.now(datetime.UTC)
    servers.append(
        gossiping(tmp_path, "alertmanager-2", free_port(), mesh, tls_config(tmp_path / "secret-2"))
    )
    servers[-1].wait_for("/-/ready", seconds=60)
    wait_until(lambda: all(metric_value(server, MEMBERS) == 3 for server in servers))
    assert "failed to join" not in servers[-1].log.read_text()
