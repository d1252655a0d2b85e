"""Pod Security Standards, checked offline on every pod template a render holds.

The rules are the Kubernetes Pod Security Standards (the ``baseline`` and ``restricted``
levels of https://kubernetes.io/docs/concepts/security/pod-security-standards/, as
PodSecurity admission of the ``latest`` version applies them), in the order the
standard lists them. Each violation is reported at the spec line that made the field,
with the field's path and the admission controller's words for the control.

A namespace's level is the ``pod-security.kubernetes.io/enforce`` label of its rendered
Namespace (``baseline`` when it has none); violations of it are errors. A stricter
``warn`` or ``audit`` label adds warnings; a namespace with no Pod Security label at all
is checked as ``enforce=baseline, warn=restricted``: what specc renders meets
restricted, and a pasted upstream manifest that only misses restricted's hardening is
said, not refused, while one that escalates privileges (baseline) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from specc.check.messages import field_path
from specc.errors import Finding, object_ref
from specc.objects import DesiredObject

Level = Literal["privileged", "baseline", "restricted"]
LEVELS: tuple[Level, ...] = ("privileged", "baseline", "restricted")
#: The enforce level of a namespace whose Namespace carries no enforce label.
DEFAULT_LEVEL: Level = "baseline"
#: The warn level of a namespace that carries no Pod Security label at all.
DEFAULT_WARN_LEVEL: Level = "restricted"
LABEL = "pod-security.kubernetes.io/"

FieldPath = tuple[str | int, ...]

#: Kinds whose pod templates PodSecurity admission evaluates, and where the template is.
TEMPLATE_PATHS: dict[tuple[str, str], FieldPath] = {
    ("v1", "Pod"): (),
    ("v1", "PodTemplate"): ("template",),
    ("v1", "ReplicationController"): ("spec", "template"),
    ("apps/v1", "Deployment"): ("spec", "template"),
    ("apps/v1", "ReplicaSet"): ("spec", "template"),
    ("apps/v1", "StatefulSet"): ("spec", "template"),
    ("apps/v1", "DaemonSet"): ("spec", "template"),
    ("batch/v1", "Job"): ("spec", "template"),
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}

#: Baseline: capabilities a container may add beyond the runtime's default set.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
#: Baseline: the "safe" sysctls.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ping_group_range",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.tcp_wmem",
    }
)
#: Baseline: SELinux types a pod or container may set.
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
#: Restricted: the volume types allowed (any other volume source is refused).
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Violation:
    """One control a pod template fails: where (inside the template) and what."""

    level: Level
    loc: FieldPath
    message: str


def namespace_levels(objects: Iterable[DesiredObject]) -> dict[str, dict[str, Level]]:
    """Return the Pod Security labels (enforce/warn/audit → level) of each rendered Namespace."""
    out: dict[str, dict[str, Level]] = {}
    for obj in objects:
        if obj.body.get("apiVersion") != "v1" or obj.kind != "Namespace":
            continue
        meta = obj.body.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        modes: dict[str, Level] = {}
        for mode in ("enforce", "warn", "audit"):
            value = labels.get(LABEL + mode) if isinstance(labels, dict) else None
            if value in LEVELS:
                modes[mode] = value
        out[obj.name] = modes
    return out


def check_pod_security(objects: list[DesiredObject], kubernetes_version: str) -> list[Finding]:
    """Return the Pod Security findings of every pod template among ``objects``.

    Errors for the namespace's enforce level, warnings for a stricter warn/audit level.
    """
    levels = namespace_levels(objects)
    minor = _minor(kubernetes_version)
    findings: list[Finding] = []
    for obj in objects:
        where = TEMPLATE_PATHS.get((str(obj.body.get("apiVersion")), obj.kind))
        if where is None:
            continue
        template = _get(obj.body, where)
        if not isinstance(template, dict):
            continue
        namespace = _namespace(obj)
        labelled = levels.get(namespace) or {}
        modes = labelled or {"warn": DEFAULT_WARN_LEVEL}
        enforce = modes.get("enforce", DEFAULT_LEVEL)
        strictest = max((modes.get(m, enforce) for m in ("warn", "audit")), key=LEVELS.index)
        strictest = max(enforce, strictest, key=LEVELS.index)
        if strictest == "privileged":
            continue
        subject = object_ref(obj.kind, namespace or None, obj.name)
        for v in pod_violations(template, strictest, minor):
            error = LEVELS.index(v.level) <= LEVELS.index(enforce)
            shown = enforce if error else strictest
            given = ("enforce" if error else "warn") in labelled
            label = ("enforce" if error else "warn") + ("" if given else ", by default")
            loc = (*where, *v.loc)
            findings.append(
                Finding(
                    obj.position_of(loc),
                    f'violates PodSecurity "{shown}" ({label}, namespace {namespace!r}): '
                    f"{v.message}",
                    field_path(loc),
                    subject,
                    "error" if error else "warning",
                )
            )
    return findings


def pod_violations(template: dict[str, Any], level: Level, minor: int = 99) -> list[Violation]:
    """Return how a pod template (``metadata`` + ``spec``) fails ``level``.

    ``minor`` is the Kubernetes minor version: controls added in later versions (host
    probes, 1.34) apply from that version on, as with an ``enforce-version`` of latest.
    """
    if level == "privileged":
        return []
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return []
    meta = template.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    out = list(_baseline(spec, annotations if isinstance(annotations, dict) else {}, minor))
    if level == "restricted":
        out += _restricted(spec)
    return out


def _baseline(spec: dict[str, Any], annotations: dict[str, Any], minor: int) -> Iterator[Violation]:
    b: Level = "baseline"
    pod_sc = _dict(spec.get("securityContext"))
    if (
        spec.get("hostNetwork") is True
        or spec.get("hostPID") is True
        or spec.get("hostIPC") is True
    ):
        for name in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(name) is True:
                yield Violation(b, ("spec", name), f"host namespaces ({name}=true)")
    for loc, c in _containers(spec):
        sc = _dict(c.get("securityContext"))
        name = c.get("name", "?")
        if sc.get("privileged") is True:
            yield Violation(
                b,
                (*loc, "securityContext", "privileged"),
                f'privileged (container "{name}" must not set securityContext.privileged=true)',
            )
        added = _dict(sc.get("capabilities")).get("add")
        for i, cap in enumerate(added if isinstance(added, list) else []):
            if cap not in BASELINE_CAPABILITIES:
                yield Violation(
                    b,
                    (*loc, "securityContext", "capabilities", "add", i),
                    f'non-default capabilities (container "{name}" must not include {cap!r} '
                    "in securityContext.capabilities.add)",
                )
        for i, port in enumerate(c.get("ports") or []):
            if isinstance(port, dict) and port.get("hostPort") not in (None, 0):
                yield Violation(
                    b,
                    (*loc, "ports", i, "hostPort"),
                    f'hostPort (container "{name}" uses hostPort {port.get("hostPort")})',
                )
        yield from _apparmor(b, (*loc, "securityContext"), sc, f'container "{name}"')
        yield from _selinux(b, (*loc, "securityContext"), sc, f'container "{name}"')
        # A pod in its own user namespace (hostUsers: false) may unmask /proc (1.33+).
        if sc.get("procMount") not in (None, "Default") and spec.get("hostUsers") is not False:
            yield Violation(
                b,
                (*loc, "securityContext", "procMount"),
                f'procMount (container "{name}" must not set securityContext.procMount='
                f"{sc.get('procMount')!r})",
            )
        if _dict(sc.get("seccompProfile")).get("type") == "Unconfined":
            yield Violation(
                b,
                (*loc, "securityContext", "seccompProfile", "type"),
                f'seccompProfile (container "{name}" must not set '
                'securityContext.seccompProfile.type to "Unconfined")',
            )
        if minor >= 34:
            yield from _host_probes(b, loc, c, name)
    for i, v in enumerate(spec.get("volumes") or []):
        if isinstance(v, dict) and "hostPath" in v:
            yield Violation(
                b,
                ("spec", "volumes", i, "hostPath"),
                f'hostPath volumes (volume "{v.get("name")}")',
            )
    yield from _apparmor(b, ("spec", "securityContext"), pod_sc, "pod")
    for key, value in annotations.items():
        allowed = value == "runtime/default" or str(value).startswith("localhost/")
        if str(key).startswith("container.apparmor.security.beta.kubernetes.io/") and not allowed:
            yield Violation(
                b, ("metadata", "annotations", key), f"forbidden AppArmor profile ({value})"
            )
    yield from _selinux(b, ("spec", "securityContext"), pod_sc, "pod")
    if _dict(pod_sc.get("seccompProfile")).get("type") == "Unconfined":
        yield Violation(
            b,
            ("spec", "securityContext", "seccompProfile", "type"),
            'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
        )
    for i, s in enumerate(pod_sc.get("sysctls") or []):
        if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS:
            yield Violation(
                b, ("spec", "securityContext", "sysctls", i), f"forbidden sysctls ({s.get('name')})"
            )


def _restricted(spec: dict[str, Any]) -> Iterator[Violation]:
    r: Level = "restricted"
    pod_sc = _dict(spec.get("securityContext"))
    for i, v in enumerate(spec.get("volumes") or []):
        if not isinstance(v, dict):
            continue
        kinds = [k for k in v if k != "name"]
        for k in kinds:
            if k not in RESTRICTED_VOLUMES and k != "hostPath":  # hostPath: baseline says it
                yield Violation(
                    r,
                    ("spec", "volumes", i, k),
                    f'restricted volume types (volume "{v.get("name")}" uses restricted '
                    f'volume type "{k}")',
                )
    pod_non_root = pod_sc.get("runAsNonRoot")
    pod_seccomp = _dict(pod_sc.get("seccompProfile")).get("type")
    if pod_non_root is False:
        yield Violation(
            r,
            ("spec", "securityContext", "runAsNonRoot"),
            "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
        )
    if pod_sc.get("runAsUser") == 0:
        yield Violation(
            r,
            ("spec", "securityContext", "runAsUser"),
            "runAsUser=0 (pod must not set runAsUser=0)",
        )
    for loc, c in _containers(spec):
        sc = _dict(c.get("securityContext"))
        name = c.get("name", "?")
        if sc.get("allowPrivilegeEscalation") is not False:
            yield Violation(
                r,
                (*loc, "securityContext", "allowPrivilegeEscalation"),
                f'allowPrivilegeEscalation != false (container "{name}" must set '
                "securityContext.allowPrivilegeEscalation=false)",
            )
        caps = _dict(sc.get("capabilities"))
        drop = caps.get("drop")
        if not isinstance(drop, list) or "ALL" not in drop:
            yield Violation(
                r,
                (*loc, "securityContext", "capabilities", "drop"),
                f'unrestricted capabilities (container "{name}" must set '
                'securityContext.capabilities.drop=["ALL"])',
            )
        added = caps.get("add")
        for i, cap in enumerate(added if isinstance(added, list) else []):
            # Caps outside baseline's set are already a baseline violation.
            if cap != "NET_BIND_SERVICE" and cap in BASELINE_CAPABILITIES:
                yield Violation(
                    r,
                    (*loc, "securityContext", "capabilities", "add", i),
                    f'unrestricted capabilities (container "{name}" must not include {cap!r} '
                    "in securityContext.capabilities.add; only NET_BIND_SERVICE is allowed)",
                )
        non_root = sc.get("runAsNonRoot")
        if non_root is False or (non_root is None and pod_non_root is not True):
            yield Violation(
                r,
                (*loc, "securityContext", "runAsNonRoot"),
                f'runAsNonRoot != true (pod or container "{name}" must set '
                "securityContext.runAsNonRoot=true)",
            )
        if sc.get("runAsUser") == 0:
            yield Violation(
                r,
                (*loc, "securityContext", "runAsUser"),
                f'runAsUser=0 (container "{name}" must not set runAsUser=0)',
            )
        seccomp = _dict(sc.get("seccompProfile")).get("type")
        if seccomp is None and pod_seccomp not in ("RuntimeDefault", "Localhost"):
            yield Violation(
                r,
                (*loc, "securityContext", "seccompProfile"),
                f'seccompProfile (pod or container "{name}" must set '
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
            )


def _apparmor(level: Level, loc: FieldPath, sc: dict[str, Any], who: str) -> Iterator[Violation]:
    kind = _dict(sc.get("appArmorProfile")).get("type")
    if kind is not None and kind not in ("RuntimeDefault", "Localhost"):
        yield Violation(
            level,
            (*loc, "appArmorProfile", "type"),
            f'forbidden AppArmor profile ({who} must not set appArmorProfile.type to "{kind}")',
        )


def _selinux(level: Level, loc: FieldPath, sc: dict[str, Any], who: str) -> Iterator[Violation]:
    opts = _dict(sc.get("seLinuxOptions"))
    if opts.get("type", "") not in SELINUX_TYPES:
        yield Violation(
            level,
            (*loc, "seLinuxOptions", "type"),
            f"seLinuxOptions ({who} must not set seLinuxOptions.type={opts.get('type')!r})",
        )
    for key in ("user", "role"):
        if opts.get(key) not in (None, ""):
            yield Violation(
                level,
                (*loc, "seLinuxOptions", key),
                f"seLinuxOptions ({who} must not set seLinuxOptions.{key})",
            )


def _host_probes(level: Level, loc: FieldPath, c: dict[str, Any], name: str) -> Iterator[Violation]:
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = _dict(c.get(probe))
        for handler in ("httpGet", "tcpSocket"):
            if _dict(p.get(handler)).get("host") not in (None, ""):
                yield Violation(
                    level,
                    (*loc, probe, handler, "host"),
                    f'probe or lifecycle host (container "{name}" uses {probe}.{handler}.host)',
                )
    lifecycle = _dict(c.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        h = _dict(lifecycle.get(hook))
        for handler in ("httpGet", "tcpSocket"):
            if _dict(h.get(handler)).get("host") not in (None, ""):
                yield Violation(
                    level,
                    (*loc, "lifecycle", hook, handler, "host"),
                    f'probe or lifecycle host (container "{name}" uses lifecycle.{hook}.'
                    f"{handler}.host)",
                )


def _containers(spec: dict[str, Any]) -> Iterator[tuple[FieldPath, dict[str, Any]]]:
    for key in _CONTAINER_LISTS:
        items = spec.get(key)
        for i, c in enumerate(items if isinstance(items, list) else []):
            if isinstance(c, dict):
                yield ("spec", key, i), c


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _get(body: dict[str, Any], path: FieldPath) -> Any:
    node: Any = body
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _namespace(obj: DesiredObject) -> str:
    meta = obj.body.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    return ns if isinstance(ns, str) else ""


def _minor(version: str) -> int:
    try:
        return int(version.split(".")[1])
    except (IndexError, ValueError):
        return 99
