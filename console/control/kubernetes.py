"""Kubernetes: Gateway API HTTPRoute backendRef weights, KServe canaryTrafficPercent, Deployment
rollback the way `kubectl rollout undo` does it, and Argo Rollouts abort / promote.

Credentials come from a kubeconfig (its current context, or the one named: bearer token, token file,
client certificate, CA) or from the pod's service account. Every change is sent first with
`?dryRun=All`, then for real with `fieldManager=fleetdeck`; HTTPRoute patches carry a `test` op per
weight, so a route changed by someone else fails as a conflict instead of being overwritten.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

from console.config import KubernetesBackend as KubernetesConfig
from console.control import NO_INTENT, CheckResult, Conflict, ControlError, Intent, ReadOnlyBackend
from console.model import RouteState, RouteTarget

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
FIELD_MANAGER = "fleetdeck"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = 5.0

PATHS = {
    "argo-rollout": "/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/{name}",
    "deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "httproute": "/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/{name}",
    "kserve": "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}",
}


@dataclass
class Credentials:
    """How to reach one API server."""

    server: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: ssl.SSLContext | bool = True
    source: str = ""  # where they came from, in words (never the secret itself)


def _data_file(data: str, directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(base64.b64decode(data))
    return path


def load_kubeconfig(path: Path, context: str | None = None) -> Credentials:
    """Credentials of a kubeconfig context (the current one unless named)."""
    where = f"kubeconfig {path}"
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ControlError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ControlError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise ControlError(f"{where}: not a kubeconfig")

    def named(section: str, name: str) -> dict[str, Any]:
        for entry in document.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry.get(section.rstrip("s")) or {}
        raise ControlError(f"{where}: no {section.rstrip('s')} named {name!r}")

    context_name = context or document.get("current-context")
    if not context_name:
        raise ControlError(f"{where}: no current-context, and none named in the route's backend")
    ctx = named("contexts", context_name)
    cluster = named("clusters", ctx.get("cluster", ""))
    user = named("users", ctx.get("user", "")) if ctx.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise ControlError(f"{where}: cluster {ctx.get('cluster')!r} has no server")
    base = path.parent

    def file_of(value: str) -> str:
        return str(base / value) if not os.path.isabs(value) else value

    verify: ssl.SSLContext | bool = True
    with tempfile.TemporaryDirectory(prefix="fleetdeck-kube-") as scratch:
        if cluster.get("insecure-skip-tls-verify"):
            verify = False
        else:
            verify = ssl.create_default_context()
            if cluster.get("certificate-authority-data"):
                verify.load_verify_locations(
                    cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
                )
            elif cluster.get("certificate-authority"):
                verify.load_verify_locations(cafile=file_of(cluster["certificate-authority"]))
        cert = user.get("client-certificate-data") or user.get("client-certificate")
        key = user.get("client-key-data") or user.get("client-key")
        if cert and key:
            if not isinstance(verify, ssl.SSLContext):
                verify = ssl.create_default_context()
                verify.check_hostname = False
                verify.verify_mode = ssl.CERT_NONE
            cert_file = (
                _data_file(user["client-certificate-data"], scratch, "cert.pem")
                if user.get("client-certificate-data")
                else file_of(user["client-certificate"])
            )
            key_file = (
                _data_file(user["client-key-data"], scratch, "key.pem")
                if user.get("client-key-data")
                else file_of(user["client-key"])
            )
            verify.load_cert_chain(cert_file, key_file)
    headers = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(file_of(user["tokenFile"])).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("exec") or user.get("auth-provider"):
        raise ControlError(
            f"{where}: user {ctx.get('user')!r} uses an exec or auth-provider plugin;"
            " use a token, token file or client certificate"
        )
    return Credentials(server.rstrip("/"), headers, verify, f"{where} context {context_name}")


def in_cluster(env: Mapping[str, str] = os.environ, root: Path = SERVICE_ACCOUNT) -> Credentials:
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ControlError("in_cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)")
    try:
        token = (root / "token").read_text().strip()
    except OSError as exc:
        raise ControlError(f"in_cluster: cannot read the service account token ({exc.strerror})") from None
    verify = ssl.create_default_context(cafile=str(root / "ca.crt"))
    host = f"[{host}]" if ":" in host else host
    return Credentials(
        f"https://{host}:{port}", {"Authorization": f"Bearer {token}"}, verify, "in-cluster service account"
    )


def credentials_for(config: KubernetesConfig, env: Mapping[str, str] = os.environ) -> Credentials:
    if config.in_cluster:
        return in_cluster(env)
    if config.kubeconfig is not None:
        path = config.kubeconfig
    elif env.get("KUBECONFIG"):
        path = Path(env["KUBECONFIG"].split(os.pathsep)[0])
    else:
        path = Path.home() / ".kube" / "config"
    try:
        return load_kubeconfig(path, config.context)
    except (OSError, ssl.SSLError, ValueError, KeyError) as exc:
        raise ControlError(f"kubeconfig {path}: unusable credentials ({type(exc).__name__}: {exc})") from None


class KubernetesRoute:
    kind = "kubernetes"
    has_states = False

    def __init__(
        self,
        route: str,
        config: KubernetesConfig,
        targets: Mapping[str, str],
        stable: str,
        protected: bool = False,
        credentials: Credentials | None = None,
    ) -> None:
        if config.resource not in PATHS:
            raise ControlError(
                f"route {route}: kubernetes resource {config.resource!r} cannot be driven by fleetdeck yet"
                f" (supported: {', '.join(PATHS)})"
            )
        self.route = route
        self.config = config
        self.targets = dict(targets)  # endpoint -> backendRef name (httproute) or "stable" / "canary"
        self.stable = stable
        self.protected = protected
        self._credentials = credentials
        self._client: httpx.AsyncClient | None = None
        self.path = PATHS[config.resource].format(namespace=config.namespace, name=config.name)
        self._refs: dict[str, tuple[int, int | None]] = {}  # backendRef name -> (index, weight as read)

    @property
    def label(self) -> str:
        return f"kubernetes {self.config.resource} {self.config.namespace}/{self.config.name}"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            creds = self._credentials or credentials_for(self.config)
            self._credentials = creds
            self._client = httpx.AsyncClient(
                base_url=creds.server,
                headers={"Accept": "application/json", **creds.headers},
                verify=creds.verify,
                timeout=httpx.Timeout(TIMEOUT),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(
        self,
        method: str,
        query: str = "",
        body: bytes | None = None,
        content_type: str = "",
        path: str | None = None,
    ) -> Any:
        client = self._http()
        url = (path or self.path) + (f"?{query}" if query else "")
        headers = {"Content-Type": content_type} if content_type else {}
        where = f"kubernetes {client.base_url.host}: {method} {self.label.removeprefix('kubernetes ')}"
        try:
            response = await client.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ControlError(f"{where}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        if response.status_code < 300:
            try:
                return response.json()
            except ValueError:
                raise ControlError(f"{where}: the answer is not JSON") from None
        try:
            message = response.json().get("message") or response.reason_phrase
        except (ValueError, AttributeError):
            message = response.reason_phrase
        line = f"{where}: {response.status_code} {message}"
        if response.status_code == 403:
            raise ReadOnlyBackend(line)
        if response.status_code == 409 or (response.status_code == 422 and "test failed" in message):
            raise Conflict(line)
        raise ControlError(line)

    # --- reading ---

    async def read(self) -> RouteState:
        obj = await self._call("GET")
        weights = self._weights(obj)
        targets = []
        for endpoint, ref in self.targets.items():
            if ref not in weights:
                raise ControlError(f"{self.label}: no backendRef {ref!r} (route target {endpoint})")
            targets.append(RouteTarget(endpoint, weights[ref]))
        return RouteState(self.route, self.kind, self.stable, tuple(targets), self.protected)

    def _weights(self, obj: dict[str, Any]) -> dict[str, int]:
        spec = obj.get("spec") or {}
        if self.config.resource == "kserve":
            canary = (spec.get("predictor") or {}).get("canaryTrafficPercent")
            percent = 100 if canary is None else int(canary)  # unset: the latest revision takes it all
            names = list(self.targets.values())
            stable = self.targets[self.stable]
            other = next((n for n in names if n != stable), "canary")
            return {stable: 100 - percent, other: percent}
        rules = spec.get("rules") or []
        if self.config.rule >= len(rules):
            raise ControlError(f"{self.label}: no rule {self.config.rule} (it has {len(rules)})")
        self._refs = {}
        weights = {}
        for index, ref in enumerate(rules[self.config.rule].get("backendRefs") or []):
            raw = ref.get("weight")
            self._refs[ref.get("name")] = (index, raw)
            weights[ref.get("name")] = 1 if raw is None else int(raw)  # the API's default weight
        return weights

    # --- writing ---

    def patch(self, before: RouteState, after: RouteState) -> tuple[str, bytes]:
        """(content type, body) of the PATCH that takes `before` to `after`."""
        old = {t.endpoint: t.weight for t in before.targets}
        if self.config.resource == "kserve":
            canary = next(t for t in after.targets if t.endpoint != self.stable)
            body = {"spec": {"predictor": {"canaryTrafficPercent": canary.weight}}}
            return MERGE_PATCH, json.dumps(body, separators=(",", ":")).encode()
        ops: list[dict[str, Any]] = []
        for target in after.targets:
            if old.get(target.endpoint) == target.weight:
                continue
            ref = self.targets[target.endpoint]
            if ref not in self._refs:
                raise ControlError(f"{self.label}: no backendRef {ref!r}; read the route first")
            index, raw = self._refs[ref]
            path = f"/spec/rules/{self.config.rule}/backendRefs/{index}/weight"
            if raw is None:
                ops.append({"op": "add", "path": path, "value": target.weight})
            else:
                ops.append({"op": "test", "path": path, "value": raw})
                ops.append({"op": "replace", "path": path, "value": target.weight})
        return JSON_PATCH, json.dumps(ops, separators=(",", ":")).encode()

    def planned_requests(self, obj: dict[str, Any], before: RouteState, after: RouteState) -> tuple[str, ...]:
        """The requests `apply` would send to take `before` to `after`, with the object read as `obj`."""
        self._weights(obj)
        return self._describe(*self.patch(before, after))

    def _describe(self, content_type: str, body: bytes) -> tuple[str, ...]:
        return (
            f"PATCH {self.path}?fieldManager={FIELD_MANAGER}",
            f"Content-Type: {content_type}",
            body.decode(),
        )

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        content_type, body = self.patch(before, after)
        requests = self._describe(content_type, body)
        try:
            result = await self._call("PATCH", f"dryRun=All&fieldManager={FIELD_MANAGER}", body, content_type)
        except ReadOnlyBackend as exc:
            return CheckResult(requests, "refused by the API server", writable=False, reason=str(exc))
        got = self._weights(result)
        planned = {self.targets[t.endpoint]: t.weight for t in after.targets}
        if any(got.get(name) != weight for name, weight in planned.items()):
            raise ControlError(f"{self.label}: the dry run answered weights {got}, planned {planned}")
        return CheckResult(requests, "server-side dry run (dryRun=All) accepted")

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        content_type, body = self.patch(before, after)
        await self._call("PATCH", f"fieldManager={FIELD_MANAGER}", body, content_type)


# what `kubectl rollout undo` keeps from the Deployment rather than taking from the ReplicaSet
ANNOTATIONS_TO_SKIP = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
)
REVISION = "deployment.kubernetes.io/revision"


def images(template: dict[str, Any]) -> str:
    containers = (template.get("spec") or {}).get("containers") or []
    return "images " + ", ".join(str(c.get("image", "?")) for c in containers)


class DeploymentRollout(KubernetesRoute):
    """A Deployment rolled back the way `kubectl rollout undo` does it: the previous ReplicaSet's pod
    template (less its pod-template-hash label) and annotations, in one JSON patch."""

    def __init__(
        self, *args: Any, pinned_image: Callable[[], str | None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pinned_image = pinned_image
        self._patch: bytes | None = None
        self._target_rs = ""
        self._deployment: dict[str, Any] = {}
        self._revision = ""

    async def read(self) -> RouteState:
        obj = await self._call("GET")
        template = (obj.get("spec") or {}).get("template") or {}
        self._deployment = obj
        self._revision = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
        targets = tuple(RouteTarget(endpoint, 100) for endpoint in self.targets)
        return RouteState(self.route, self.kind, self.stable, targets, self.protected, images(template))

    async def plan_rollback(self, current: RouteState) -> tuple[RouteState, str]:
        deployment = self._deployment
        spec = deployment.get("spec") or {}
        if spec.get("paused"):
            return current, "the Deployment is paused; resume it before rolling back"
        if self.config.rollback_to == "pin":
            return self._plan_pinned(current, spec)
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        path = f"/apis/apps/v1/namespaces/{self.config.namespace}/replicasets"
        listing = await self._call("GET", f"labelSelector={quote(selector, safe='')}", path=path)
        uid = (deployment.get("metadata") or {}).get("uid")
        owned = []
        for rs in listing.get("items") or []:
            meta = rs.get("metadata") or {}
            refs = meta.get("ownerReferences") or []
            revision = (meta.get("annotations") or {}).get(REVISION, "")
            if revision.isdigit() and any(r.get("uid") == uid and r.get("controller") for r in refs):
                owned.append((int(revision), rs))
        owned.sort(key=lambda pair: pair[0])
        now = int(self._revision) if self._revision.isdigit() else (owned[-1][0] if owned else 0)
        previous = [pair for pair in owned if pair[0] < now]
        if not previous:
            return (
                current,
                f"no previous revision of {self.config.namespace}/{self.config.name} to roll back to",
            )
        revision, rs = previous[-1]
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        ((template.get("metadata") or {}).get("labels") or {}).pop("pod-template-hash", None)
        if template == spec.get("template"):
            return current, f"the Deployment already runs the template of revision {revision}"
        own = (deployment.get("metadata") or {}).get("annotations") or {}
        annotations = {k: own[k] for k in ANNOTATIONS_TO_SKIP if k in own}
        rs_annotations = (rs.get("metadata") or {}).get("annotations") or {}
        annotations.update({k: v for k, v in rs_annotations.items() if k not in ANNOTATIONS_TO_SKIP})
        ops = [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]
        self._patch = json.dumps(ops, separators=(",", ":")).encode()
        self._target_rs = f"ReplicaSet {(rs.get('metadata') or {}).get('name')} (revision {revision})"
        return replace(current, revision=images(template)), ""

    def _plan_pinned(self, current: RouteState, spec: dict[str, Any]) -> tuple[RouteState, str]:
        """Back to the pinned image: one container's image, guarded by a `test` op on the one it runs."""
        image = self.pinned_image() if self.pinned_image is not None else None
        if not image:
            return current, f"no image is pinned for {self.stable}'s pin in the lock file"
        template = copy.deepcopy(spec.get("template") or {})
        containers = (template.get("spec") or {}).get("containers") or []
        names = [c.get("name") for c in containers]
        wanted = self.config.container
        if not containers or (wanted is not None and wanted not in names):
            return (
                current,
                f"no container {wanted or ''!r} in the Deployment (it has {', '.join(map(str, names))})",
            )
        index = names.index(wanted) if wanted is not None else 0
        running = containers[index].get("image")
        if running == image:
            return current, f"container {names[index]} already runs the pinned image {image}"
        path = f"/spec/template/spec/containers/{index}/image"
        ops = [
            {"op": "test", "path": path, "value": running},
            {"op": "replace", "path": path, "value": image},
        ]
        self._patch = json.dumps(ops, separators=(",", ":")).encode()
        self._target_rs = f"the pinned image {image}"
        containers[index]["image"] = image
        return replace(current, revision=images(template)), ""

    def patch(self, before: RouteState, after: RouteState) -> tuple[str, bytes]:
        if self._patch is None or after.revision == before.revision:
            raise ControlError(f"{self.label}: nothing planned; press R to plan a rollback")
        return JSON_PATCH, self._patch

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        content_type, body = self.patch(before, after)
        requests = (f"back to {self._target_rs}", *self._describe(content_type, body))
        try:
            result = await self._call("PATCH", f"dryRun=All&fieldManager={FIELD_MANAGER}", body, content_type)
        except ReadOnlyBackend as exc:
            return CheckResult(requests, "refused by the API server", writable=False, reason=str(exc))
        got = images((result.get("spec") or {}).get("template") or {})
        if got != after.revision:
            raise ControlError(f"{self.label}: the dry run answered {got}, planned {after.revision}")
        return CheckResult(requests, "server-side dry run (dryRun=All) accepted")


class ArgoRollout(KubernetesRoute):
    """An Argo Rollout: `R` aborts it, `]` promotes it one step. Argo's controller then moves the traffic;
    fleetdeck changes only the rollout's status, so that is what it plans and verifies."""

    steps_owned = "Argo Rollouts owns the steps of this split: R aborts the rollout, ] promotes it"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.canary = next((n for n in self.targets if n != self.stable), self.stable)

    async def read(self) -> RouteState:
        obj = await self._call("GET")
        status = obj.get("status") or {}
        weights = ((status.get("canary") or {}).get("weights")) or {}
        if weights:
            canary = int((weights.get("canary") or {}).get("weight", 0))
        else:
            steps = (((obj.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps") or []
            index = int(status.get("currentStepIndex", 0))
            done = [s["setWeight"] for s in steps[:index] if isinstance(s, dict) and "setWeight" in s]
            canary = 100 if index >= len(steps) and steps else (int(done[-1]) if done else 0)
        if status.get("abort"):
            phase = "aborted"
        elif status.get("pauseConditions") or (obj.get("spec") or {}).get("paused"):
            phase = "paused"
        else:
            # a phase of Paused lingers until the controller catches up with a promotion
            phase = str(status.get("phase", "")).lower()
            phase = phase if phase in ("healthy", "degraded") else "progressing"
        targets = tuple(
            RouteTarget(name, canary if name == self.canary else 100 - canary) for name in self.targets
        )
        return RouteState(self.route, self.kind, self.stable, targets, self.protected, f"rollout {phase}")

    async def plan_rollback(self, current: RouteState) -> tuple[RouteState, str]:
        if current.revision == "rollout aborted":
            return current, "the rollout is already aborted"
        return replace(current, revision="rollout aborted"), ""

    async def plan_promote(self, current: RouteState) -> tuple[RouteState, str]:
        if current.revision != "rollout paused":
            return current, f"nothing to promote: the {current.revision}, not paused"
        return replace(current, revision="rollout progressing"), ""

    def requests(self, after: RouteState) -> list[tuple[str, bytes]]:
        """(path, merge patch) pairs: abort on the status; promote clears the pause on status and spec."""
        if after.revision == "rollout aborted":
            return [(f"{self.path}/status", b'{"status":{"abort":true}}')]
        return [
            (f"{self.path}/status", b'{"status":{"pauseConditions":null}}'),
            (self.path, b'{"spec":{"paused":false}}'),
        ]

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        pairs = self.requests(after)
        lines: list[str] = []
        for path, body in pairs:
            lines += [
                f"PATCH {path}?fieldManager={FIELD_MANAGER}",
                f"Content-Type: {MERGE_PATCH}",
                body.decode(),
            ]
        try:
            for path, body in pairs:
                await self._call("PATCH", f"dryRun=All&fieldManager={FIELD_MANAGER}", body, MERGE_PATCH, path)
        except ReadOnlyBackend as exc:
            return CheckResult(tuple(lines), "refused by the API server", writable=False, reason=str(exc))
        return CheckResult(
            tuple(lines), "server-side dry run (dryRun=All) accepted; Argo then moves the traffic"
        )

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        for path, body in self.requests(after):
            await self._call("PATCH", f"fieldManager={FIELD_MANAGER}", body, MERGE_PATCH, path)
