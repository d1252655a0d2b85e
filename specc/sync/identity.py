"""Which fleet's cluster a server is: read from the specc ApplySet parents it holds.

Every parent records the fleet and the cluster it belongs to (labels ``specc.dev/fleet``
and ``specc.dev/cluster``). Before a command writes, it reads the server's parents: a
server that holds another cluster of the same fleet, or a cluster of another fleet, is
not the one the command was asked to change, whatever the kubeconfig says.

Parents written before identities were recorded carry neither label. Their name,
``specc-<cluster>``, still says which cluster they are; their fleet is unknown. A
legacy parent of the cluster being synced is taken as this fleet's (there is no way
to tell, and refusing would strand every existing installation); the next write
records the identity. A legacy parent of another cluster is another cluster.

Pure: the parents come from one LIST the caller makes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from specc.sync.inventory import CLUSTER_LABEL, FLEET_LABEL, ID_LABEL, ApplySetParent

_PREFIX = "specc-"


@dataclass(frozen=True)
class ParentIdentity:
    """What one live specc parent says about itself."""

    name: str
    namespace: str
    applyset: str
    #: "" when the parent predates recorded identities (``legacy``).
    fleet: str
    cluster: str
    legacy: bool = False

    @classmethod
    def of(cls, live: dict[str, Any]) -> ParentIdentity:
        meta = live.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = str(meta.get("name", ""))
        cluster = str(labels.get(CLUSTER_LABEL) or "")
        legacy = not cluster
        if legacy:
            cluster = name[len(_PREFIX) :] if name.startswith(_PREFIX) else name
        return cls(
            name,
            str(meta.get("namespace", "")),
            str(labels.get(ID_LABEL, "")),
            str(labels.get(FLEET_LABEL) or ""),
            cluster,
            legacy,
        )

    def describe(self) -> str:
        """Return e.g. ``cluster dev of fleet acme (ConfigMap specc-system/specc-dev)``."""
        fleet = f"fleet {self.fleet}" if self.fleet else "an unrecorded fleet"
        return f"cluster {self.cluster} of {fleet} (ConfigMap {self.namespace}/{self.name})"


def identities(parents: Iterable[dict[str, Any]]) -> list[ParentIdentity]:
    """Return the identities of live parents, sorted by name."""
    return sorted((ParentIdentity.of(p) for p in parents), key=lambda i: i.name)


def foreign(parent: ApplySetParent, parents: Iterable[dict[str, Any]]) -> list[ParentIdentity]:
    """Return the parents on the server that belong to another cluster or another fleet.

    ``parent.fleet`` empty (a caller that does not know its fleet) compares clusters only.
    """
    out = []
    for ident in identities(parents):
        if ident.name != parent.name or ident.namespace != parent.namespace:
            out.append(ident)  # another cluster target, of this fleet or another
        elif ident.cluster != parent.cluster and not ident.legacy:
            out.append(ident)  # our parent's name, someone else's label: not ours either
        elif parent.fleet and ident.fleet and ident.fleet != parent.fleet:
            out.append(ident)
    return out


def mismatch_message(parent: ApplySetParent, server: str, others: list[ParentIdentity]) -> str:
    """Return the identity guard's refusal: which cluster was asked for, what the server holds."""
    ours = f"cluster {parent.cluster}" + (f" of fleet {parent.fleet}" if parent.fleet else "")
    held = "; ".join(o.describe() for o in others)
    where = f"the server {server}" if server else "the server"
    return (
        f"{ours}: {where} holds {held}; refusing to write to it "
        "(a wrong --context or kubeconfig?). For a deliberate migration, pass "
        "--allow-cluster-mismatch"
    )


def specc_sets(parents: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Return ApplySet id → ``specc cluster <c> of fleet <f>`` for the parents on the server."""
    out = {}
    for ident in identities(parents):
        if ident.applyset:
            fleet = f" of fleet {ident.fleet}" if ident.fleet else ""
            out[ident.applyset] = f"specc cluster {ident.cluster}{fleet}"
    return out
