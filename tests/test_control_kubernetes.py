"""Kubernetes against a loopback API server that checks every request byte for byte and answers with the
API server's real shapes: objects, Status bodies, 403 from RBAC, 409 conflicts, 422 from a failed test op."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from console.actions import Action, Actions, Operator, OutcomeKind, build_routes
from console.config import parse_config
from console.control import ControlError
from console.control.kubernetes import in_cluster, load_kubeconfig
from console.store import AuditOutcome, Store

TOKEN = "k8s-test-token-not-a-secret"
HTTPROUTE = "/apis/gateway.networking.k8s.io/v1/namespaces/serving/httproutes/chat"
KSERVE = "/apis/serving.kserve.io/v1beta1/namespaces/serving/inferenceservices/qwen"
ALICE = Operator("alice", "alice")


def httproute() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat", "namespace": "serving", "resourceVersion": "4711", "generation": 3},
        "spec": {
            "parentRefs": [{"name": "inference-gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": "qwen-a", "port": 8000, "weight": 90},
                        {"group": "", "kind": "Service", "name": "qwen-b", "port": 8000, "weight": 10},
                    ],
                }
            ],
        },
        "status": {"parents": []},
    }


def inference_service() -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "qwen", "namespace": "serving", "resourceVersion": "88"},
        "spec": {
            "predictor": {"canaryTrafficPercent": 20, "model": {"modelFormat": {"name": "huggingface"}}}
        },
        "status": {"components": {"predictor": {"traffic": []}}},
    }


def status(code: int, reason: str, message: str, **details: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any] | str:
    """RFC 6902 for the ops fleetdeck sends; a failed test returns the API server's message."""
    result = copy.deepcopy(obj)
    for op in ops:
        *parents, last = [int(p) if p.isdigit() else p for p in op["path"].strip("/").split("/")]
        node: Any = result
        for part in parents:
            node = node[part]
        if op["op"] == "test":
            if node.get(last) != op["value"]:
                return f"testing value {op['path']} failed: test failed"
        elif op["op"] in ("replace", "add"):
            node[last] = op["value"]
        else:
            return f"unexpected op {op['op']}"
    return result


def merge_patch(obj: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(obj) if isinstance(obj, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class FakeApiServer:
    objects: dict[str, dict[str, Any]]
    requests: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    forbid_patch: bool = False
    conflict_next: bool = False
    change_underneath: dict[str, Any] | None = None  # applied just before the next real PATCH
    port: int = 0


def handler_for(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorised(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.answer(401, status(401, "Unauthorized", "Unauthorized"))
                return False
            return True

        def do_GET(self) -> None:
            api.requests.append(("GET", self.path, "", b""))
            if not self.authorised():
                return
            if self.path not in api.objects:
                self.answer(404, status(404, "NotFound", "not found"))
                return
            self.answer(200, api.objects[self.path])

        def do_PATCH(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            content_type = self.headers.get("Content-Type", "")
            api.requests.append(("PATCH", self.path, content_type, body))
            if not self.authorised():
                return
            path, _, query = self.path.partition("?")
            params = dict(p.split("=", 1) for p in query.split("&") if p)
            if path not in api.objects:
                self.answer(404, status(404, "NotFound", "not found"))
                return
            kind = "httproutes" if "httproutes" in path else "inferenceservices"
            group = path.split("/")[2]
            name = path.rsplit("/", 1)[1]
            if api.forbid_patch:
                message = (
                    f'{kind}.{group} "{name}" is forbidden: User "system:serviceaccount:ops:fleetdeck" cannot'
                    f' patch resource "{kind}" in API group "{group}" in the namespace "serving"'
                )
                self.answer(403, status(403, "Forbidden", message, name=name, group=group, kind=kind))
                return
            dry = params.get("dryRun") == "All"
            if not dry and api.conflict_next:
                api.conflict_next = False
                message = (
                    f'Operation cannot be fulfilled on {kind}.{group} "{name}": the object has been modified;'
                    " please apply your changes to the latest version and try again"
                )
                self.answer(409, status(409, "Conflict", message, name=name, group=group, kind=kind))
                return
            if not dry and api.change_underneath is not None:
                api.objects[path] = api.change_underneath
                api.change_underneath = None
            current = api.objects[path]
            if content_type == "application/json-patch+json":
                patched = json_patch(current, json.loads(body))
            elif content_type == "application/merge-patch+json":
                patched = merge_patch(current, json.loads(body))
            else:
                message = (
                    "the body of the request was in an unknown format - accepted media types include:"
                    " application/json-patch+json, application/merge-patch+json"
                )
                self.answer(415, status(415, "UnsupportedMediaType", message))
                return
            if isinstance(patched, str):
                self.answer(422, status(422, "Invalid", patched))
                return
            if params.get("fieldManager") != "fleetdeck":
                self.answer(400, status(400, "BadRequest", "fieldManager must be fleetdeck in this test"))
                return
            if not dry:
                version = int(current["metadata"]["resourceVersion"]) + 1
                patched["metadata"]["resourceVersion"] = str(version)
                api.objects[path] = patched
            self.answer(200, patched)

        def log_message(self, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    fake = FakeApiServer({HTTPROUTE: httproute(), KSERVE: inference_service()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def kubeconfig(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "kubeconfig"
    (tmp_path / "token").write_text(TOKEN + "\n")
    path.write_text(
        f"""
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod
  cluster:
    server: http://127.0.0.1:{port}
contexts:
- name: prod
  context: {{cluster: prod, user: fleetdeck, namespace: serving}}
- name: other
  context: {{cluster: missing, user: fleetdeck}}
users:
- name: fleetdeck
  user:
    tokenFile: token
"""
    )
    return path


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "fleet.sqlite") as opened:
        yield opened


def actions_for(tmp_path: Path, api: FakeApiServer, store: Store, resource: str = "httproute") -> Actions:
    path = kubeconfig(tmp_path, api.port)
    targets = (
        {"chat-a": "qwen-a", "chat-b": "qwen-b"}
        if resource == "httproute"
        else {"chat-a": "previous", "chat-b": "latest"}
    )
    config = parse_config(
        {
            "endpoints": [
                {"name": "chat-a", "url": "http://10.0.0.5:8000"},
                {"name": "chat-b", "url": "http://10.0.0.6:8000"},
            ],
            "routes": [
                {
                    "name": "chat",
                    "backend": {
                        "kind": "kubernetes",
                        "resource": resource,
                        "namespace": "serving",
                        "name": "chat" if resource == "httproute" else "qwen",
                        "kubeconfig": "kubeconfig",
                    },
                    "targets": targets,
                    "stable": "chat-a",
                }
            ],
        },
        source_path=path,
    )
    return Actions(build_routes(config), store, operator=ALICE)


DRY = f"{HTTPROUTE}?dryRun=All&fieldManager=fleetdeck"
REAL = f"{HTTPROUTE}?fieldManager=fleetdeck"
SHIFT_BODY = (
    b'[{"op":"test","path":"/spec/rules/0/backendRefs/0/weight","value":90},'
    b'{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":80},'
    b'{"op":"test","path":"/spec/rules/0/backendRefs/1/weight","value":10},'
    b'{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":20}]'
)


async def test_httproute_shift_dry_run_then_apply_byte_for_byte(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    actions = actions_for(tmp_path, api, store)
    route = actions.routes["chat"]
    plan = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    assert plan.can_confirm, plan
    assert plan.dry_run == "server-side dry run (dryRun=All) accepted"
    assert plan.requests == (
        f"PATCH {REAL}",
        "Content-Type: application/json-patch+json",
        SHIFT_BODY.decode(),
    )
    assert api.requests == [
        ("GET", HTTPROUTE, "", b""),
        ("PATCH", DRY, "application/json-patch+json", SHIFT_BODY),
    ]
    assert (
        api.objects[HTTPROUTE]["spec"]["rules"][0]["backendRefs"][1]["weight"] == 10
    )  # dry run changed nothing
    api.requests.clear()
    outcome = await actions.execute(plan)
    assert outcome.ok, outcome
    assert api.requests == [
        ("GET", HTTPROUTE, "", b""),
        ("PATCH", REAL, "application/json-patch+json", SHIFT_BODY),
        ("GET", HTTPROUTE, "", b""),
    ]
    refs = api.objects[HTTPROUTE]["spec"]["rules"][0]["backendRefs"]
    assert [r["weight"] for r in refs] == [80, 20]
    assert api.objects[HTTPROUTE]["metadata"]["resourceVersion"] == "4712"
    await actions.close()


async def test_a_409_conflict_applies_nothing_and_asks_for_a_new_plan(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    actions = actions_for(tmp_path, api, store)
    plan = await actions.plan(Action.SHIFT_TOWARD, actions.routes["chat"], "chat-b")
    api.conflict_next = True
    outcome = await actions.execute(plan)
    assert outcome.kind is OutcomeKind.STALE
    assert "409 Operation cannot be fulfilled on httproutes.gateway.networking.k8s.io" in outcome.message
    assert [r["weight"] for r in api.objects[HTTPROUTE]["spec"]["rules"][0]["backendRefs"]] == [90, 10]
    assert (await store.audit_entries())[0].outcome is AuditOutcome.REFUSED
    await actions.close()


async def test_a_failed_test_op_means_someone_else_changed_it(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    actions = actions_for(tmp_path, api, store)
    plan = await actions.plan(Action.SHIFT_TOWARD, actions.routes["chat"], "chat-b")
    moved = httproute()
    moved["spec"]["rules"][0]["backendRefs"][1]["weight"] = 50
    api.change_underneath = moved  # between the re-read and the PATCH
    outcome = await actions.execute(plan)
    assert outcome.kind is OutcomeKind.STALE
    assert "422 testing value /spec/rules/0/backendRefs/0/weight" not in outcome.message
    assert "422 testing value /spec/rules/0/backendRefs/1/weight failed: test failed" in outcome.message
    assert "it is now chat-a 90, chat-b 50" in outcome.message
    assert [r["weight"] for r in api.objects[HTTPROUTE]["spec"]["rules"][0]["backendRefs"]] == [90, 50]
    await actions.close()


async def test_rbac_403_shows_the_plan_but_blocks_it(tmp_path: Path, api: FakeApiServer, store: Store):
    api.forbid_patch = True
    actions = actions_for(tmp_path, api, store)
    plan = await actions.plan(Action.SHIFT_TOWARD, actions.routes["chat"], "chat-b")
    assert not plan.can_confirm
    assert 'cannot patch resource "httproutes"' in plan.blocked
    assert plan.rows()[1] == ("chat-b", "10", "20", 10, 20)
    await actions.close()


async def test_kserve_rollback_is_a_merge_patch_of_canary_traffic(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    actions = actions_for(tmp_path, api, store, resource="kserve")
    route = actions.routes["chat"]
    assert [(t.endpoint, t.weight) for t in (await actions.read(route)).targets] == [
        ("chat-a", 80),
        ("chat-b", 20),
    ]
    plan = await actions.plan(Action.ROLLBACK, route)
    body = b'{"spec":{"predictor":{"canaryTrafficPercent":0}}}'
    assert api.requests[-1] == (
        "PATCH",
        f"{KSERVE}?dryRun=All&fieldManager=fleetdeck",
        "application/merge-patch+json",
        body,
    )
    outcome = await actions.execute(plan)
    assert outcome.ok, outcome
    assert api.requests[-2] == (
        "PATCH",
        f"{KSERVE}?fieldManager=fleetdeck",
        "application/merge-patch+json",
        body,
    )
    assert api.objects[KSERVE]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert api.objects[KSERVE]["spec"]["predictor"]["model"] == {"modelFormat": {"name": "huggingface"}}
    await actions.close()


async def test_wrong_token_and_bad_kubeconfig_are_clear(tmp_path: Path, api: FakeApiServer, store: Store):
    actions = actions_for(tmp_path, api, store)
    (tmp_path / "token").write_text("wrong")
    with pytest.raises(
        ControlError, match=r"kubernetes 127.0.0.1: GET httproute serving/chat: 401 Unauthorized"
    ):
        await actions.read(actions.routes["chat"])
    with pytest.raises(ControlError, match="no cluster named 'missing'"):
        load_kubeconfig(tmp_path / "kubeconfig", "other")
    with pytest.raises(ControlError, match="no context named 'nope'"):
        load_kubeconfig(tmp_path / "kubeconfig", "nope")
    (tmp_path / "broken").write_text("clusters: [")
    with pytest.raises(ControlError, match="not valid YAML"):
        load_kubeconfig(tmp_path / "broken")
    with pytest.raises(ControlError, match="KUBERNETES_SERVICE_HOST is not set"):
        in_cluster({})
    await actions.close()


def test_in_cluster_reads_the_service_account(tmp_path: Path):
    with pytest.raises(ControlError, match="cannot read the service account token"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, tmp_path)
    (tmp_path / "token").write_text("sa-token\n")
    import ssl
    import subprocess

    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kubernetes",
         "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.crt"), "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    creds = in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
    assert creds.server == "https://10.96.0.1:443"
    assert creds.headers == {"Authorization": "Bearer sa-token"}
    assert isinstance(creds.verify, ssl.SSLContext) and creds.verify.get_ca_certs()
