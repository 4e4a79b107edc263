"""Kubernetes: Gateway API HTTPRoute backendRef weights, KServe canary traffic, Deployment rollback the
way `kubectl rollout undo` does it, and Argo Rollouts abort / promote.

Credentials come from a kubeconfig (every file of a `KUBECONFIG` list, merged as client-go merges them;
the current context or the one named: bearer token, token file re-read about once a minute, client
certificate, CA, `proxy-url`, `tls-server-name`, the context's namespace), from a token in an environment
variable, or from the pod's service account. Every change is sent first with `?dryRun=All`, then for real
with `fieldManager=fleetdeck`, guarded by JSON-patch `test` ops, so an object changed by someone else
fails as a conflict instead of being overwritten. A change is verified against what the system reports
as its traffic (KServe's and Argo's status, every rule of an HTTPRoute), waiting briefly for a controller.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import yaml

from console import net
from console.config import KubernetesBackend as KubernetesConfig
from console.config import backend_ref
from console.control import (
    NO_INTENT,
    CheckResult,
    Conflict,
    ControlBackend,
    ControlError,
    Intent,
    ReadOnlyBackend,
    control_fetch,
    same_split,
)
from console.model import RouteState, RouteTarget, shares

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
FIELD_MANAGER = "fleetdeck"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
TIMEOUT = 5.0
TOKEN_PERIOD = 60.0  # client-go re-reads a token file once a minute (transport/token_source.go)
# what the API server answers when a JSON-patch op fails, a `test` included: apimachinery's
# NewGenericServerResponse(422) from apiserver's endpoints/handlers/patch.go, reason Invalid, no causes
GENERIC_INVALID = "the server rejected our request due to an error in our request"

PATHS = {
    "argo-rollout": "/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/{name}",
    "deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "httproute": "/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/{name}",
    "kserve": "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}",
}
NO_EXEC = (
    "fleetdeck does not run exec or auth-provider plugins; instead set token_env to a variable holding a"
    " token, give the kubeconfig user a tokenFile (e.g. written by `kubectl create token <serviceaccount>`),"
    " or run fleetdeck in the cluster with in_cluster = true"
)


class TokenSource:
    """A bearer token: inline, or read from a file again about once a minute so a rotated token is picked
    up; the file's last good read wins over an inline token, as in client-go (rest/config.go)."""

    def __init__(
        self,
        inline: str | None = None,
        path: Path | None = None,
        where: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inline = inline or None
        self.path = path
        self._clock = clock
        self._value: str | None = None
        self._read_at = 0.0
        if path is not None:
            try:
                self._read()
            except OSError as exc:
                raise ControlError(
                    f"{where}: cannot read the token file {path} ({exc.strerror or exc})"
                ) from None

    def _read(self) -> None:
        assert self.path is not None
        self._read_at = self._clock()
        self._value = self.path.read_text().strip() or self._value

    def current(self) -> str | None:
        if self.path is not None and self._clock() - self._read_at >= TOKEN_PERIOD:
            with contextlib.suppress(OSError):  # keep the last good token, as client-go does
                self._read()
        return self._value or self.inline


@dataclass
class Credentials:
    """How to reach one API server."""

    server: str
    headers: dict[str, str] = field(default_factory=dict)
    verify: ssl.SSLContext | bool = True
    source: str = ""  # where they came from, in words (never the secret itself)
    token: TokenSource | None = None
    proxy: str | None = None  # the cluster's proxy-url
    namespace: str | None = None  # the context's namespace (in a pod: its own)

    def authorization(self) -> dict[str, str]:
        token = self.token.current() if self.token is not None else None
        return {"Authorization": f"Bearer {token}"} if token else {}


class _ServerNameContext(ssl.SSLContext):
    """Sends `tls-server-name` as SNI and checks the certificate against it instead of the URL's host, as
    client-go's TLS ServerName does; also through a CONNECT proxy."""

    server_name = ""

    def wrap_socket(  # type: ignore[override]
        self,
        sock: Any,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock, server_side, do_handshake_on_connect, suppress_ragged_eofs, self.server_name, session
        )

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, self.server_name, session)


def _data_file(data: str, directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(base64.b64decode(data))
    return path


def _tls(
    cluster: dict[str, Any],
    user: dict[str, Any],
    cluster_file: Callable[[str], str],
    user_file: Callable[[str], str],
) -> ssl.SSLContext | bool:
    cert = user.get("client-certificate-data") or user.get("client-certificate")
    key = user.get("client-key-data") or user.get("client-key")
    insecure = bool(cluster.get("insecure-skip-tls-verify"))
    server_name = cluster.get("tls-server-name")
    if insecure and not (cert and key):
        return False
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_name:
        context = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
        context.server_name = str(server_name)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context.load_verify_locations(cafile=cluster_file(cluster["certificate-authority"]))
    else:
        context.load_default_certs()
    if cert and key:
        with tempfile.TemporaryDirectory(prefix="fleetdeck-kube-") as scratch:
            cert_file = (
                _data_file(user["client-certificate-data"], scratch, "cert.pem")
                if user.get("client-certificate-data")
                else user_file(user["client-certificate"])
            )
            key_file = (
                _data_file(user["client-key-data"], scratch, "key.pem")
                if user.get("client-key-data")
                else user_file(user["client-key"])
            )
            context.load_cert_chain(cert_file, key_file)
    return context


def _merged(
    paths: Sequence[Path], explicit: bool
) -> tuple[dict[str, dict[str, tuple[dict[str, Any], Path]]], str]:
    """Clusters, users and contexts by name (with the directory their file is in) and the current context,
    merged as client-go's loading rules do (tools/clientcmd/loader.go): the first file to set a name or the
    current context wins; a missing file of a `KUBECONFIG` list is skipped."""
    sections: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
        "clusters": {},
        "users": {},
        "contexts": {},
    }
    current = ""
    found = 0
    for path in paths:
        where = f"kubeconfig {path}"
        try:
            document = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            if explicit:
                raise ControlError(f"{where}: no such file") from None
            continue
        except OSError as exc:
            raise ControlError(f"{where}: cannot read it ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            raise ControlError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ControlError(f"{where}: not a kubeconfig")
        found += 1
        for section, named in sections.items():
            for entry in document.get(section) or []:
                if (
                    isinstance(entry, dict)
                    and isinstance(entry.get("name"), str)
                    and entry["name"] not in named
                ):
                    body = entry.get(section.rstrip("s"))
                    named[entry["name"]] = (body if isinstance(body, dict) else {}, path.parent)
        current = current or str(document.get("current-context") or "")
    if not found:
        raise ControlError(f"kubeconfig {os.pathsep.join(map(str, paths))}: none of these files exists")
    return sections, current


def load_kubeconfig(
    path: Path | Sequence[Path],
    context: str | None = None,
    token: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Credentials:
    """Credentials of a kubeconfig context (the current one unless named); a list of files is merged.
    `token` (from token_env) replaces the user's own credentials."""
    paths = [path] if isinstance(path, Path) else list(path)
    where = f"kubeconfig {os.pathsep.join(map(str, paths))}"
    sections, current = _merged(paths, explicit=isinstance(path, Path))

    def named(section: str, name: str) -> tuple[dict[str, Any], Path]:
        if name not in sections[section]:
            raise ControlError(f"{where}: no {section.rstrip('s')} named {name!r}")
        return sections[section][name]

    context_name = context or current
    if not context_name:
        raise ControlError(f"{where}: no current-context, and none named in the route's backend")
    ctx, _ = named("contexts", context_name)
    cluster, cluster_dir = named("clusters", str(ctx.get("cluster", "")))
    user, user_dir = named("users", str(ctx["user"])) if ctx.get("user") else ({}, cluster_dir)
    server = cluster.get("server")
    if not server:
        raise ControlError(f"{where}: cluster {ctx.get('cluster')!r} has no server")

    def in_dir(base: Path) -> Callable[[str], str]:
        return lambda value: value if os.path.isabs(value) else str(base / value)

    if token is not None:
        user = {}
    user_file = in_dir(user_dir)
    try:
        verify = _tls(cluster, user, in_dir(cluster_dir), user_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ControlError(f"{where}: unusable TLS settings ({type(exc).__name__}: {exc})") from None
    has_cert = bool(user.get("client-certificate-data") or user.get("client-certificate"))
    source: TokenSource | None = None
    if token is not None:
        source = TokenSource(token)
    elif user.get("token") or user.get("tokenFile"):
        file = Path(user_file(str(user["tokenFile"]))) if user.get("tokenFile") else None
        source = TokenSource(user.get("token"), file, f"{where} user {ctx.get('user')!r}", clock)
    elif (user.get("exec") or user.get("auth-provider")) and not has_cert:
        plugin = (user.get("exec") or {}).get("command") if isinstance(user.get("exec"), dict) else None
        what = f"an exec plugin ({plugin})" if plugin else "an exec or auth-provider plugin"
        raise ControlError(f"{where}: user {ctx.get('user')!r} gets its credentials from {what}; {NO_EXEC}")
    proxy = cluster.get("proxy-url")
    scheme = urlsplit(str(proxy)).scheme if proxy else ""
    if proxy and scheme not in ("http", "https"):  # the URL itself may carry a password: name its scheme only
        raise ControlError(
            f"{where}: proxy-url: {scheme or 'no'} scheme; only http:// and https:// proxies work"
        )
    namespace = ctx.get("namespace")
    return Credentials(
        str(server).rstrip("/"),
        {},
        verify,
        f"{where} context {context_name}",
        source,
        str(proxy) if proxy else None,
        str(namespace) if namespace else None,
    )


def in_cluster(
    env: Mapping[str, str] = os.environ,
    root: Path = SERVICE_ACCOUNT,
    token: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Credentials:
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ControlError("in_cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)")
    if token is None:
        try:
            source = TokenSource(path=root / "token", where="in_cluster", clock=clock)
        except ControlError:
            raise ControlError(
                f"in_cluster: cannot read the service account token {root / 'token'}"
                " (automountServiceAccountToken off?)"
            ) from None
    else:
        source = TokenSource(token)
    ca = root / "ca.crt"
    if not ca.is_file():
        raise ControlError(f"in_cluster: no CA certificate at {ca} (is the service account token mounted?)")
    try:
        verify = ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ControlError(f"in_cluster: {ca} is not a usable CA certificate ({exc})") from None
    try:
        namespace = (root / "namespace").read_text().strip() or None
    except OSError:
        namespace = None
    host = f"[{host}]" if ":" in host else host
    return Credentials(
        f"https://{host}:{port}", {}, verify, "in-cluster service account", source, None, namespace
    )


def credentials_for(config: KubernetesConfig, env: Mapping[str, str] = os.environ) -> Credentials:
    token = None
    if config.token_env is not None:
        token = env.get(config.token_env, "").strip()
        if not token:
            raise ControlError(f"token_env: the environment variable {config.token_env} is not set")
    if config.in_cluster:
        return in_cluster(env, token=token)
    paths: Path | list[Path]
    if config.kubeconfig is not None:
        paths = config.kubeconfig
    elif env.get("KUBECONFIG"):
        paths = [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
    else:
        paths = Path.home() / ".kube" / "config"
    try:
        return load_kubeconfig(paths, config.context, token)
    except (OSError, ssl.SSLError, ValueError, KeyError) as exc:
        raise ControlError(
            f"kubeconfig {paths}: unusable credentials ({type(exc).__name__}: {exc})"
        ) from None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _has_test(content_type: str, body: bytes | None) -> bool:
    if content_type != JSON_PATCH or not body:
        return False
    try:
        ops = json.loads(body)
    except ValueError:
        return False
    return isinstance(ops, list) and any(isinstance(op, dict) and op.get("op") == "test" for op in ops)


def _capped(notes: list[str], limit: int = 4) -> tuple[str, ...]:
    """At most `limit` notes (each at most 200 characters), and how many more there are."""
    kept = [note if len(note) <= 200 else note[:199] + "…" for note in notes[:limit]]
    return tuple(kept + ([f"and {len(notes) - limit} more"] if len(notes) > limit else []))


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError(f"{where}: expected a whole number, got {str(value)[:40]!r}")
    return value


class KubernetesRoute(ControlBackend):
    """One Kubernetes object that holds (or moves) a route's traffic."""

    kind = "kubernetes"
    has_states = False
    settles = True
    settle_seconds = 0.0  # how long a read-back waits for a controller to move the traffic
    settle_poll = 0.25

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
        self.targets = dict(targets)  # endpoint -> the object's name for it
        self.stable = stable
        self.protected = protected
        self._credentials = credentials
        self._client: httpx.AsyncClient | None = None
        self.namespace = config.namespace or "default"
        self._resolve_namespace(credentials)

    def _resolve_namespace(self, credentials: Credentials | None) -> None:
        if self.config.namespace is None and credentials is not None and credentials.namespace:
            self.namespace = credentials.namespace
        self.path = PATHS[self.config.resource].format(namespace=self.namespace, name=self.config.name)

    @property
    def label(self) -> str:
        return f"kubernetes {self.config.resource} {self.namespace}/{self.config.name}"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            creds = self._credentials or credentials_for(self.config)
            self._credentials = creds
            self._resolve_namespace(creds)
            self._client = net.make_client(
                base_url=creds.server,
                headers={"Accept": "application/json", **creds.headers},
                verify=creds.verify,
                timeout=TIMEOUT,
                proxy=creds.proxy,
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
        assert self._credentials is not None
        url = (path or self.path) + (f"?{query}" if query else "")
        headers = {"Content-Type": content_type} if content_type else {}
        headers.update(self._credentials.authorization())
        where = f"kubernetes {client.base_url.host}: {method} {self.label.removeprefix('kubernetes ')}"
        response = await control_fetch(client, method, url, where, content=body, headers=headers)
        if response.status_code < 300:
            try:
                return response.json()
            except ValueError:
                raise ControlError(f"{where}: the answer is not JSON") from None
        try:
            answer = response.json()
            answer = answer if isinstance(answer, dict) else {}
        except ValueError:
            answer = {}
        message = str(answer.get("message") or response.reason_phrase)
        line = f"{where}: {response.status_code} {message}"
        if response.status_code == 403:
            raise ReadOnlyBackend(line)
        if response.status_code == 409:
            raise Conflict(line)
        details = answer.get("details") if isinstance(answer.get("details"), dict) else {}
        if (
            response.status_code == 422
            and answer.get("reason") == "Invalid"
            and message == GENERIC_INVALID
            and not details.get("causes")
            and _has_test(content_type, body)
        ):
            # the only answer the API server gives to a failed `test` op: nothing names which one
            raise Conflict(f"{where}: 422 Invalid: a test op failed: the object changed since the plan")
        raise ControlError(line)

    # --- the protocol, specialised per kind ---

    async def read(self) -> RouteState:
        raise NotImplementedError

    def patch(self, before: RouteState, after: RouteState) -> tuple[str, bytes]:
        """(content type, body) of the PATCH that takes `before` to `after`."""
        raise NotImplementedError

    def notes(self, after: RouteState) -> tuple[str, ...]:
        """What the person should know about this plan."""
        return ()

    def dry_run_problem(self, answer: dict[str, Any], after: RouteState) -> str:
        """Why the object the dry run answered is not the planned one ("" when it is)."""
        return ""

    def unverified(self, state: RouteState, after: RouteState) -> str:
        """Why `state` (just read) is not `after` as this system reports its traffic ("" when it is)."""
        return "" if same_split(state, after) else "not the planned split"

    def _describe(self, content_type: str, body: bytes, path: str | None = None) -> tuple[str, ...]:
        return (
            f"PATCH {path or self.path}?fieldManager={FIELD_MANAGER}",
            f"Content-Type: {content_type}",
            body.decode(),
        )

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        content_type, body = self.patch(before, after)
        requests = self._describe(content_type, body)
        notes = self.notes(after)
        try:
            result = await self._call("PATCH", f"dryRun=All&fieldManager={FIELD_MANAGER}", body, content_type)
        except ReadOnlyBackend as exc:
            return CheckResult(requests, "refused by the API server", False, str(exc), notes)
        problem = self.dry_run_problem(result if isinstance(result, dict) else {}, after)
        if problem:
            raise ControlError(f"{self.label}: the dry run answered {problem}")
        return CheckResult(requests, "server-side dry run (dryRun=All) accepted", notes=notes)

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        content_type, body = self.patch(before, after)
        await self._call("PATCH", f"fieldManager={FIELD_MANAGER}", body, content_type)

    async def settle(self, after: RouteState) -> tuple[RouteState, str]:
        """Read back until the system reports `after`, or `settle_seconds` pass: (last read, why not)."""
        deadline = time.monotonic() + self.settle_seconds
        while True:
            state = await self.read()
            problem = self.unverified(state, after)
            if not problem or time.monotonic() >= deadline:
                if problem and self.settle_seconds:
                    problem += f" (after waiting {self.settle_seconds:g} s for the controller)"
                return state, problem
            await asyncio.sleep(self.settle_poll)


# --- Gateway API HTTPRoute ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefId:
    """A backendRef's identity (Gateway API apis/v1/object_reference_types.go BackendObjectReference:
    group defaults to "", kind to Service, namespace to the route's)."""

    group: str
    kind: str
    namespace: str
    name: str
    port: int | None

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" + (f":{self.port}" if self.port is not None else "")


@dataclass(frozen=True, slots=True)
class Rule:
    index: int
    name: str
    refs: dict[str, tuple[int, Any, dict[str, Any]]]  # endpoint -> (backendRef index, weight as read, ref)

    @property
    def label(self) -> str:
        return f"rule {self.index}" + (f" ({self.name})" if self.name else "")

    def weight(self, endpoint: str) -> int:
        if endpoint not in self.refs:
            return 0
        raw = self.refs[endpoint][1]
        return 1 if raw is None else raw  # Gateway API: an unset weight is 1 (apis/v1/httproute_types.go)


class HttpRoute(KubernetesRoute):
    """An HTTPRoute: every rule that references the route's targets is read, changed (one JSON patch, a
    `test` per weight) and verified; a weighted backendRef that is not a target is shown and blocks
    "verified", since it keeps its traffic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wanted = {endpoint: backend_ref(ref) for endpoint, ref in self.targets.items()}
        self._rules: list[Rule] = []
        self._notes: tuple[str, ...] = ()

    def _id(self, ref: dict[str, Any]) -> RefId:
        port = ref.get("port")
        return RefId(
            str(ref.get("group") or ""),
            str(ref.get("kind") or "Service"),
            str(ref.get("namespace") or self.namespace),
            str(ref.get("name", "")),
            port if isinstance(port, int) else None,
        )

    def _matches(self, endpoint: str, ref: RefId) -> bool:
        group, kind, namespace, name, port = self.wanted[endpoint]
        return (group, kind, namespace or self.namespace, name) == (
            ref.group,
            ref.kind,
            ref.namespace,
            ref.name,
        ) and (port is None or port == ref.port)

    def _scan(self, obj: dict[str, Any]) -> tuple[list[Rule], list[str]]:
        """The rules that reference a target, and what else carries traffic in them."""
        rules = (obj.get("spec") or {}).get("rules") or []
        found, notes = [], []
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            if not isinstance(rule, dict):
                continue
            refs: dict[str, tuple[int, Any, dict[str, Any]]] = {}
            others = []
            for j, ref in enumerate(rule.get("backendRefs") or []):
                if not isinstance(ref, dict):
                    continue
                raw = ref.get("weight")
                if raw is not None:
                    _int(raw, f"{self.label}: rule {i} backendRef {j} weight")
                rid = self._id(ref)
                hits = [e for e in self.wanted if self._matches(e, rid)]
                if len(hits) > 1:
                    raise ControlError(
                        f"{self.label}: targets {' and '.join(hits)} both match {rid}; name the namespace"
                        " or port in the route's targets"
                    )
                if hits and hits[0] in refs:
                    raise ControlError(
                        f"{self.label}: rule {i} has two backendRefs for target {hits[0]}"
                        f" ({self._id(refs[hits[0]][2])} and {rid}); name the port in the route's target"
                    )
                if hits:
                    refs[hits[0]] = (j, raw, ref)
                elif raw is None or raw > 0:
                    others.append(f"{rid} weight {1 if raw is None else raw}")
            if refs:
                found.append(Rule(i, str(rule.get("name") or ""), refs))
                label = found[-1].label
                notes += [
                    f"{label} also sends traffic to {o}, which is not a target of this route" for o in others
                ]
        if not found:
            raise ControlError(f"{self.label}: no rule references {', '.join(self.targets.values())}")
        return found, notes

    def _split(self, rules: list[Rule]) -> tuple[Rule, list[str]]:
        """The rule whose split the route shows, and the rules that disagree with it."""
        ref = next((r for r in rules if r.index == self.config.rule), rules[0])

        def share(rule: Rule) -> dict[str, int]:
            targets = tuple(RouteTarget(e, rule.weight(e)) for e in self.targets)
            return shares(RouteState(self.route, self.kind, self.stable, targets))

        notes = []
        for rule in rules:
            if rule is not ref and share(rule) != share(ref):
                split = ", ".join(f"{e} {rule.weight(e)}" for e in self.targets)
                notes.append(f"{rule.label} splits {split}, unlike {ref.label}")
        return ref, notes

    def planned_requests(self, obj: dict[str, Any], before: RouteState, after: RouteState) -> tuple[str, ...]:
        """The requests `apply` would send to take `before` to `after`, with the route read as `obj`."""
        self._rules, _ = self._scan(obj)
        return self._describe(*self.patch(before, after))

    async def read(self) -> RouteState:
        obj = await self._call("GET")
        self._rules, notes = self._scan(obj if isinstance(obj, dict) else {})
        ref, disagree = self._split(self._rules)
        self._notes = _capped(notes + disagree)
        targets = tuple(RouteTarget(endpoint, ref.weight(endpoint)) for endpoint in self.targets)
        return RouteState(self.route, self.kind, self.stable, targets, self.protected, "; ".join(self._notes))

    def patch(self, before: RouteState, after: RouteState) -> tuple[str, bytes]:
        if not self._rules:
            raise ControlError(f"{self.label}: read the route first")
        new = {t.endpoint: t.weight for t in after.targets}
        ops: list[dict[str, Any]] = []
        for rule in self._rules:
            for endpoint, (j, raw, ref) in rule.refs.items():
                weight = new.get(endpoint)
                if weight is None or weight == rule.weight(endpoint):
                    continue
                path = f"/spec/rules/{rule.index}/backendRefs/{j}"
                if raw is None:  # no weight to test: test the whole backendRef instead
                    ops.append({"op": "test", "path": path, "value": ref})
                    ops.append({"op": "add", "path": f"{path}/weight", "value": weight})
                else:
                    ops.append({"op": "test", "path": f"{path}/weight", "value": raw})
                    ops.append({"op": "replace", "path": f"{path}/weight", "value": weight})
        return JSON_PATCH, _json(ops)

    def notes(self, after: RouteState) -> tuple[str, ...]:
        missing = [
            f"{rule.label} has no backendRef for {t.endpoint}, which this plan gives weight {t.weight}"
            for rule in self._rules
            for t in after.targets
            if t.weight > 0 and t.endpoint not in rule.refs
        ]
        return (*self._notes, *missing)

    def _planned(self, rules: list[Rule], after: RouteState) -> str:
        new = {t.endpoint: t.weight for t in after.targets}
        for rule in rules:
            got = {e: rule.weight(e) for e in self.targets}
            want = {e: (new[e] if e in rule.refs else 0) for e in self.targets}
            if got != want:
                return f"{rule.label} at " + ", ".join(f"{e} {w}" for e, w in got.items())
        return ""

    def dry_run_problem(self, answer: dict[str, Any], after: RouteState) -> str:
        rules, _ = self._scan(answer)
        return self._planned(rules, after)

    def unverified(self, state: RouteState, after: RouteState) -> str:
        problem = self._planned(self._rules, after)
        return "; ".join(p for p in (problem, *self._notes) if p)


# --- KServe InferenceService --------------------------------------------------------------------------

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"  # KServe pkg/constants/constants.go DeploymentMode
KNATIVE, STANDARD = "Knative", "Standard"
# pkg/constants ParseDeploymentMode: the legacy names of the two modes
LEGACY_MODES = {"Serverless": KNATIVE, "RawDeployment": STANDARD}


class InferenceService(KubernetesRoute):
    """A KServe InferenceService. In Serverless (Knative) mode the split is
    `spec.predictor.canaryTrafficPercent` and Knative reports it in `status.components.predictor.traffic`
    (targets: latest and previous); in Standard (RawDeployment) mode it is `spec.canary[].trafficPercent`,
    reported in `status.canaryStatuses` (targets: the canaries' predictor names; the stable target takes the
    rest). Verified against the status, waiting briefly for the controller."""

    settle_seconds = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = ""
        self._spec_percent: Any = None
        self._rolled_out = True
        self._canaries: dict[str, tuple[int, Any]] = {}  # canary name -> (spec.canary index, trafficPercent)
        self._notes: tuple[str, ...] = ()

    def _mode(self, obj: dict[str, Any]) -> str:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        mode = str(annotations.get(MODE_ANNOTATION) or status.get("deploymentMode") or "")
        mode = LEGACY_MODES.get(mode, mode)
        if not mode:  # set by the controller's configmap default: tell by what the object carries
            predictor = (status.get("components") or {}).get("predictor") or {}
            knative = "canaryTrafficPercent" in (spec.get("predictor") or {}) or predictor.get("traffic")
            mode = KNATIVE if knative else STANDARD
        if mode not in (KNATIVE, STANDARD):
            raise ControlError(f"{self.label}: deployment mode {mode[:40]!r} has no canary traffic split")
        return mode

    async def read(self) -> RouteState:
        obj = await self._call("GET")
        obj = obj if isinstance(obj, dict) else {}
        self.mode = self._mode(obj)
        if self.mode == KNATIVE:
            weights, revision = self._knative(obj)
        else:
            weights, revision = self._standard(obj)
        targets = tuple(RouteTarget(endpoint, weights[endpoint]) for endpoint in self.targets)
        return RouteState(self.route, self.kind, self.stable, targets, self.protected, revision)

    def _knative(self, obj: dict[str, Any]) -> tuple[dict[str, int], str]:
        roles = {"latest": "latest", "previous": "previous", "prev": "previous"}
        unknown = [v for v in self.targets.values() if v not in roles]
        if unknown or list(self.targets.values()).count("latest") != 1:
            raise ControlError(
                f"{self.label}: in Serverless (Knative) mode the targets are latest and previous,"
                f" ({', '.join(map(repr, self.targets.values()))})"
            )
        predictor = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
        traffic = predictor.get("traffic") or []
        if not traffic:
            raise ControlError(f"{self.label}: status.components.predictor.traffic is empty (not routed yet)")
        percent = {"latest": 0, "previous": 0}
        for entry in traffic:
            if not isinstance(entry, dict):
                continue
            role = "latest" if entry.get("latestRevision") else "previous"
            percent[role] += _int(entry.get("percent", 0), f"{self.label}: status traffic percent")
        self._spec_percent = ((obj.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
        self._rolled_out = bool(predictor.get("latestRolledoutRevision"))
        self._notes = ()
        # a new revision between plan and confirm is a change; the traffic list may leave out a 0 % one
        latest = str(predictor.get("latestCreatedRevision") or "?")[:80]
        return {e: percent[roles[v]] for e, v in self.targets.items()}, f"latest revision {latest}"

    def _standard(self, obj: dict[str, Any]) -> tuple[dict[str, int], str]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        canary = spec.get("canary") or []
        if not canary:
            hint = (
                "; canaryTrafficPercent is ignored in this mode"
                if "canaryTrafficPercent" in (spec.get("predictor") or {})
                else ""
            )
            raise ControlError(
                f"{self.label}: Standard (RawDeployment) mode has no spec.canary, so no traffic split to move"
                f"{hint} (KServe's canary there is spec.canary[].trafficPercent)"
            )
        self._canaries = {}
        for i, entry in enumerate(canary):
            if isinstance(entry, dict):
                name = str((entry.get("predictor") or {}).get("name") or "")
                self._canaries[name] = (i, entry.get("trafficPercent"))
        # only ready canaries get traffic (KServe reconcilers/ingress/httproute_reconciler.go)
        reported = {}
        for entry in status.get("canaryStatuses") or []:
            if isinstance(entry, dict):
                percent = _int(entry.get("trafficPercent", 0), f"{self.label}: canaryStatuses trafficPercent")
                reported[str(entry.get("name"))] = percent if entry.get("ready") else 0
        weights: dict[str, int] = {}
        for endpoint, name in self.targets.items():
            if endpoint == self.stable:
                continue
            if name not in self._canaries:
                raise ControlError(
                    f"{self.label}: no spec.canary entry named {name!r} (it has {', '.join(self._canaries)})"
                )
            weights[endpoint] = reported.get(name, 0)
        listed = set(self.targets.values())
        self._notes = _capped(
            [
                f"canary {name} gets {percent}% and is not a target of this route"
                for name, percent in reported.items()
                if name not in listed and percent > 0
            ]
        )
        weights[self.stable] = 100 - sum(reported.values())
        return weights, "; ".join(self._notes)

    def patch(self, before: RouteState, after: RouteState) -> tuple[str, bytes]:
        new = {t.endpoint: t.weight for t in after.targets}
        ops: list[dict[str, Any]] = []
        if self.mode == KNATIVE:
            if not self._rolled_out:
                raise ControlError(
                    f"{self.label}: KServe applies canaryTrafficPercent only once a revision has rolled out"
                    " (status.components.predictor.latestRolledoutRevision is empty)"
                )
            latest = next(e for e, v in self.targets.items() if v == "latest")
            path = "/spec/predictor/canaryTrafficPercent"
            if self._spec_percent is None:
                ops.append({"op": "add", "path": path, "value": new[latest]})
            else:
                ops.append({"op": "test", "path": path, "value": self._spec_percent})
                ops.append({"op": "replace", "path": path, "value": new[latest]})
            return JSON_PATCH, _json(ops)
        if self.mode != STANDARD:
            raise ControlError(f"{self.label}: read the InferenceService first")
        for endpoint, name in self.targets.items():
            if endpoint == self.stable or new.get(endpoint) is None:
                continue
            index, percent = self._canaries[name]
            if percent == new[endpoint]:
                continue
            path = f"/spec/canary/{index}"
            ops.append({"op": "test", "path": f"{path}/predictor/name", "value": name})
            ops.append({"op": "test", "path": f"{path}/trafficPercent", "value": percent})
            ops.append({"op": "replace", "path": f"{path}/trafficPercent", "value": new[endpoint]})
        return JSON_PATCH, _json(ops)

    def notes(self, after: RouteState) -> tuple[str, ...]:
        return self._notes

    def dry_run_problem(self, answer: dict[str, Any], after: RouteState) -> str:
        spec = answer.get("spec") or {}
        new = {t.endpoint: t.weight for t in after.targets}
        if self.mode == KNATIVE:
            latest = next(e for e, v in self.targets.items() if v == "latest")
            got = (spec.get("predictor") or {}).get("canaryTrafficPercent")
            return "" if got == new[latest] else f"canaryTrafficPercent {got}, planned {new[latest]}"
        by_name = {
            str((c.get("predictor") or {}).get("name")): c.get("trafficPercent")
            for c in spec.get("canary") or []
            if isinstance(c, dict)
        }
        for endpoint, name in self.targets.items():
            if endpoint != self.stable and by_name.get(name) != new[endpoint]:
                return f"canary {name} trafficPercent {by_name.get(name)}, planned {new[endpoint]}"
        return ""

    def unverified(self, state: RouteState, after: RouteState) -> str:
        where = "status.components.predictor.traffic" if self.mode == KNATIVE else "status.canaryStatuses"
        problems = [] if same_split(state, after) else [f"{where} is not the planned split"]
        return "; ".join([*problems, *self._notes])


# --- Deployment ---------------------------------------------------------------------------------------

# what `kubectl rollout undo` keeps from the Deployment rather than taking from the ReplicaSet
# (kubectl pkg/polymorphichelpers/rollback.go annotationsToSkip)
ANNOTATIONS_TO_SKIP = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
)
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


def _semantic(value: Any) -> Any:
    """A value as apimachinery's Semantic.DeepEqual sees it: an empty map or list is the same as none."""
    if isinstance(value, dict):
        kept = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def pod_template(template: dict[str, Any]) -> dict[str, Any]:
    """A pod template without its pod-template-hash label, for comparing as `kubectl rollout undo` does."""
    result = _semantic(copy.deepcopy(template))
    labels = (result.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return _semantic(result)


def summary(template: dict[str, Any]) -> str:
    """`images vllm/vllm-openai:v0.31.0; template 3fa1c2d9e0`: what a pod template runs, and a fingerprint
    of all of it (args, env, resources...) so two templates with one image still differ."""
    containers = (template.get("spec") or {}).get("containers") or []
    digest = hashlib.sha256(_json(pod_template(template))).hexdigest()[:10]
    return "images " + ", ".join(str(c.get("image", "?")) for c in containers) + f"; template {digest}"


def _flat(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flat(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        for item in value:  # containers, env, ports, volumes: keyed by name, not position
            _flat({k: v for k, v in item.items() if k != "name"}, f"{path}[{item['name']}]", out)
    else:
        out[path] = value


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 8) -> list[str]:
    """`spec.containers[vllm].args: [...] -> [...]` for each field that differs between two pod templates."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _flat(pod_template(old), "", before)
    _flat(pod_template(new), "", after)
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            line = f"{key}: {_short(before.get(key))} -> {_short(after.get(key))}"
            lines.append(line)
    if len(lines) > limit:
        lines = [*lines[:limit], f"and {len(lines) - limit} more"]
    return lines


def _short(value: Any, width: int = 70) -> str:
    text = "(none)" if value is None else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


class DeploymentRollout(KubernetesRoute):
    """A Deployment rolled back the way `kubectl rollout undo` does it: the previous ReplicaSet's pod
    template (less its pod-template-hash label) and annotations, in one JSON patch, guarded by a `test` of
    the resourceVersion read just before applying."""

    plans_rollback = True

    def __init__(
        self, *args: Any, pinned_image: Callable[[], str | None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pinned_image = pinned_image
        self._ops: list[dict[str, Any]] | None = None
        self._target_rs = ""
        self._changes: list[str] = []
        self._deployment: dict[str, Any] = {}
        self._revision = ""

    async def read(self) -> RouteState:
        obj = await self._call("GET")
        self._deployment = obj if isinstance(obj, dict) else {}
        template = (self._deployment.get("spec") or {}).get("template") or {}
        self._revision = ((self._deployment.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
        targets = tuple(RouteTarget(endpoint, 100) for endpoint in self.targets)
        return RouteState(self.route, self.kind, self.stable, targets, self.protected, summary(template))

    async def plan_rollback(self, current: RouteState) -> tuple[RouteState, str]:
        deployment = self._deployment
        spec = deployment.get("spec") or {}
        self._ops = None
        if spec.get("paused"):
            return current, "the Deployment is paused; resume it before rolling back"
        if self.config.rollback_to == "pin":
            return self._plan_pinned(current, spec)
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        path = f"/apis/apps/v1/namespaces/{self.namespace}/replicasets"
        listing = await self._call("GET", f"labelSelector={quote(selector, safe='')}", path=path)
        uid = (deployment.get("metadata") or {}).get("uid")
        owned = []
        for rs in listing.get("items") or []:
            meta = rs.get("metadata") or {}
            refs = meta.get("ownerReferences") or []
            revision = str((meta.get("annotations") or {}).get(REVISION, ""))
            if revision.isdigit() and any(r.get("uid") == uid and r.get("controller") for r in refs):
                owned.append((int(revision), rs))
        owned.sort(key=lambda pair: pair[0])
        now = int(self._revision) if self._revision.isdigit() else (owned[-1][0] if owned else 0)
        previous = [pair for pair in owned if pair[0] < now]
        if not previous:
            return current, f"no previous revision of {self.namespace}/{self.config.name} to roll back to"
        revision, rs = previous[-1]
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        ((template.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
        running = spec.get("template") or {}
        if pod_template(template) == pod_template(running):
            return current, f"the Deployment already runs the template of revision {revision}"
        own = (deployment.get("metadata") or {}).get("annotations") or {}
        annotations = {k: own[k] for k in ANNOTATIONS_TO_SKIP if k in own}
        rs_annotations = (rs.get("metadata") or {}).get("annotations") or {}
        annotations.update({k: v for k, v in rs_annotations.items() if k not in ANNOTATIONS_TO_SKIP})
        self._ops = [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]
        self._changes = differences(running, template)
        self._target_rs = f"ReplicaSet {(rs.get('metadata') or {}).get('name')} (revision {revision})"
        return replace(current, revision=summary(template)), ""

    def _plan_pinned(self, current: RouteState, spec: dict[str, Any]) -> tuple[RouteState, str]:
        """Back to the pinned image: one container's image, guarded by a `test` op on the one it runs."""
        image = self.pinned_image() if self.pinned_image is not None else None
        if not image:
            return current, f"no image is pinned for {self.stable}'s pin in the lock file"
        running = spec.get("template") or {}
        template = copy.deepcopy(running)
        containers = (template.get("spec") or {}).get("containers") or []
        names = [c.get("name") for c in containers]
        wanted = self.config.container
        if not containers or (wanted is not None and wanted not in names):
            return (
                current,
                f"no container {wanted or ''!r} in the Deployment (it has {', '.join(map(str, names))})",
            )
        index = names.index(wanted) if wanted is not None else 0
        image_now = containers[index].get("image")
        if image_now == image:
            return current, f"container {names[index]} already runs the pinned image {image}"
        path = f"/spec/template/spec/containers/{index}/image"
        self._ops = [
            {"op": "test", "path": path, "value": image_now},
            {"op": "replace", "path": path, "value": image},
        ]
        self._target_rs = f"the pinned image {image}"
        containers[index]["image"] = image
        self._changes = differences(running, template)
        return replace(current, revision=summary(template)), ""

    def patch(self, before: RouteState, after: RouteState) -> tuple[str, bytes]:
        if self._ops is None or after.revision == before.revision:
            raise ControlError(f"{self.label}: nothing planned; press R to plan a rollback")
        # the resourceVersion of the last read: the plan's for the dry run, the re-read's when applying
        version = (self._deployment.get("metadata") or {}).get("resourceVersion")
        guard = [{"op": "test", "path": "/metadata/resourceVersion", "value": version}] if version else []
        return JSON_PATCH, _json(guard + self._ops)

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        result = await super().check(before, after, intent)
        requests = (
            f"back to {self._target_rs}",
            *(f"changes {line}" for line in self._changes),
            *result.requests,
        )
        return replace(result, requests=requests)

    def notes(self, after: RouteState) -> tuple[str, ...]:
        return (
            "the resourceVersion tested is the one read again just before applying",
            "the Deployment controller then replaces the pods (kubectl rollout status shows how far)",
        )

    def dry_run_problem(self, answer: dict[str, Any], after: RouteState) -> str:
        got = summary((answer.get("spec") or {}).get("template") or {})
        return "" if got == after.revision else f"{got}, planned {after.revision}"


# --- Argo Rollouts ------------------------------------------------------------------------------------

ABORT_NOTE = (
    "the Rollout's template still names the new version: Argo will roll it out again when the rollout is"
    " retried or changed, unless spec.template is set back to the old version"
)


class ArgoRollout(KubernetesRoute):
    """An Argo Rollout: `R` aborts it, `]` promotes it one step, as `kubectl argo rollouts` does. Argo's
    controller then moves the traffic; the read-back waits for the controller's own status (phase, step,
    status.canary.weights)."""

    plans_rollback = True
    plans_promote = True
    steps_owned = "Argo Rollouts owns the steps of this split: R aborts the rollout, ] promotes it"
    settle_seconds = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.canary = next((n for n in self.targets if n != self.stable), self.stable)
        self._obj: dict[str, Any] = {}
        self._from_step = 0
        self._patches: list[tuple[str, bytes]] = []

    def _steps(self) -> list[Any]:
        strategy = (self._obj.get("spec") or {}).get("strategy") or {}
        return ((strategy.get("canary") or {}).get("steps")) or []

    def _index(self) -> int:
        index = (self._obj.get("status") or {}).get("currentStepIndex")
        return index if isinstance(index, int) and not isinstance(index, bool) else 0

    def _weights(self) -> dict[str, int] | None:
        """The weights the controller says it set on the traffic provider (only with trafficRouting)."""
        weights = ((self._obj.get("status") or {}).get("canary") or {}).get("weights")
        if not isinstance(weights, dict):
            return None
        canary = _int((weights.get("canary") or {}).get("weight", 0), f"{self.label}: canary weight")
        return {"canary": canary, "stable": 100 - canary}

    def _phase(self) -> str:
        status = self._obj.get("status") or {}
        phase = str(status.get("phase", "")).lower()
        if status.get("abort"):
            # the controller reports an abort as Degraded (utils/rollout/rolloututil.go CalculateRolloutPhase)
            return "aborted" if phase == "degraded" else "aborting"
        if status.get("pauseConditions") or (self._obj.get("spec") or {}).get("paused"):
            return "paused"
        return phase if phase in ("healthy", "degraded", "paused") else "progressing"

    async def read(self) -> RouteState:
        obj = await self._call("GET")
        self._obj = obj if isinstance(obj, dict) else {}
        weights = self._weights()
        if weights is not None:
            canary = weights["canary"]
        else:
            steps, index = self._steps(), self._index()
            done = [s["setWeight"] for s in steps[:index] if isinstance(s, dict) and "setWeight" in s]
            canary = 100 if index >= len(steps) and steps else (int(done[-1]) if done else 0)
        phase = self._phase()
        revision = f"rollout {phase}"
        if phase == "paused" and self._steps():
            revision += f" at step {self._index() + 1} of {len(self._steps())}"
        targets = tuple(
            RouteTarget(name, canary if name == self.canary else 100 - canary) for name in self.targets
        )
        return RouteState(self.route, self.kind, self.stable, targets, self.protected, revision)

    async def plan_rollback(self, current: RouteState) -> tuple[RouteState, str]:
        if self._phase() in ("aborted", "aborting"):
            return current, "the rollout is already aborted"
        self._patches = [(f"{self.path}/status", b'{"status":{"abort":true}}')]
        targets = tuple(
            RouteTarget(t.endpoint, 0 if t.endpoint == self.canary else 100) for t in current.targets
        )
        return replace(current, targets=targets, revision="rollout aborted"), ""

    async def plan_promote(self, current: RouteState) -> tuple[RouteState, str]:
        """The patches of `kubectl argo rollouts promote` (pkg/kubectl-argo-rollouts/cmd/promote): unpause
        the spec if paused; an inconclusive analysis pause also clears controllerPause and steps on."""
        if self._phase() != "paused":
            return current, f"nothing to promote: the {current.revision}, not paused"
        status = self._obj.get("status") or {}
        steps, index = self._steps(), self._index()
        analysis = ((status.get("canary") or {}).get("currentStepAnalysisRunStatus")) or {}
        inconclusive = bool(steps) and analysis.get("status") == "Inconclusive"
        following = min(index + 1, len(steps))
        status_patch: dict[str, Any] | None = None
        if inconclusive and status.get("pauseConditions") and status.get("controllerPause"):
            status_patch = {"pauseConditions": None, "controllerPause": False, "currentStepIndex": following}
        elif status.get("pauseConditions"):
            status_patch = {"pauseConditions": None}
        elif steps:
            status_patch = {"pauseConditions": None, "currentStepIndex": following}
        self._patches = []
        if status_patch is not None:
            self._patches.append((f"{self.path}/status", _json({"status": status_patch})))
        if (self._obj.get("spec") or {}).get("paused"):
            self._patches.append((self.path, b'{"spec":{"paused":false}}'))
        self._from_step = index
        where = f" past step {index + 1} of {len(steps)}" if steps else ""
        return replace(current, revision=f"rollout promoted{where}"), ""

    def notes(self, after: RouteState) -> tuple[str, ...]:
        return (ABORT_NOTE,) if after.revision == "rollout aborted" else ()

    def unverified(self, state: RouteState, after: RouteState) -> str:
        weights = self._weights()
        if after.revision == "rollout aborted":
            if self._phase() != "aborted":
                return f"the controller has not reported the abort (phase {self._phase()})"
            if weights is not None and weights["canary"] != 0:
                return f"the controller still reports canary weight {weights['canary']}"
            return ""
        steps = self._steps()
        status = self._obj.get("status") or {}
        phase = str(status.get("phase", "")).lower()
        if phase == "healthy":
            return ""
        paused = status.get("pauseConditions") or (self._obj.get("spec") or {}).get("paused")
        if phase == "paused" and not paused:
            # only the controller's last word: it reports Paused only while a pause condition is set
            return "the controller has not taken up the promotion yet"
        if self._index() > self._from_step or (steps and self._index() >= len(steps)):
            return ""
        return f"the rollout is still at step {self._index() + 1} of {len(steps)} ({self._phase()})"

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        lines: list[str] = []
        for path, body in self._patches:
            lines += self._describe(MERGE_PATCH, body, path)
        notes = self.notes(after)
        try:
            for path, body in self._patches:
                await self._call("PATCH", f"dryRun=All&fieldManager={FIELD_MANAGER}", body, MERGE_PATCH, path)
        except ReadOnlyBackend as exc:
            return CheckResult(tuple(lines), "refused by the API server", False, str(exc), notes)
        return CheckResult(
            tuple(lines),
            "server-side dry run (dryRun=All) accepted; Argo then moves the traffic",
            notes=notes,
        )

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        for path, body in self._patches:
            await self._call("PATCH", f"fieldManager={FIELD_MANAGER}", body, MERGE_PATCH, path)


KINDS: dict[str, type[KubernetesRoute]] = {
    "httproute": HttpRoute,
    "kserve": InferenceService,
    "deployment": DeploymentRollout,
    "argo-rollout": ArgoRollout,
}


def route_for(
    route: str,
    config: KubernetesConfig,
    targets: Mapping[str, str],
    stable: str,
    protected: bool = False,
    pinned_image: Callable[[], str | None] | None = None,
    credentials: Credentials | None = None,
) -> KubernetesRoute:
    """The adapter for a route's Kubernetes object."""
    if config.resource == "deployment":
        return DeploymentRollout(
            route, config, targets, stable, protected, credentials, pinned_image=pinned_image
        )
    return KINDS[config.resource](route, config, targets, stable, protected, credentials)
