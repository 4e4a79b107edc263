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
DEPLOYMENT = "/apis/apps/v1/namespaces/serving/deployments/qwen"
ROLLOUT = "/apis/argoproj.io/v1alpha1/namespaces/serving/rollouts/qwen"
REPLICASETS = "/apis/apps/v1/namespaces/serving/replicasets?labelSelector=app%3Dqwen%2Ctier%3Dserving"
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


def deployment(paused: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "qwen",
            "namespace": "serving",
            "uid": "7c1d2e3f-0000-4000-8000-000000000001",
            "resourceVersion": "500",
            "generation": 4,
            "annotations": {
                "deployment.kubernetes.io/revision": "4",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "spec": {
            "replicas": 2,
            "paused": paused,
            "selector": {"matchLabels": {"tier": "serving", "app": "qwen"}},
            "template": {
                "metadata": {"labels": {"app": "qwen", "tier": "serving"}},
                "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.32.0"}]},
            },
        },
        "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": 2},
    }


def replica_set(name: str, revision: int, image: str, owner: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "serving",
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3",
                "team/note": f"rev{revision}",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "qwen",
                    "uid": owner,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 0,
            "template": {
                "metadata": {"labels": {"app": "qwen", "tier": "serving", "pod-template-hash": name[-9:]}},
                "spec": {"containers": [{"name": "vllm", "image": image}]},
            },
        },
    }


def replica_sets() -> dict[str, Any]:
    uid = "7c1d2e3f-0000-4000-8000-000000000001"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSetList",
        "metadata": {"resourceVersion": "600"},
        "items": [
            replica_set("qwen-6b9f7d5c8", 2, "vllm/vllm-openai:v0.30.0", uid),
            replica_set("qwen-5d8f7c9b4", 3, "vllm/vllm-openai:v0.31.0", uid),
            replica_set("qwen-7f6c5b4d9", 4, "vllm/vllm-openai:v0.32.0", uid),
            replica_set("other-8c7b6a5d4", 9, "someone/else:1", "another-owner"),
        ],
    }


def rollout() -> dict[str, Any]:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "10m"}}]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "qwen", "namespace": "serving", "resourceVersion": "900", "generation": 5},
        "spec": {
            "replicas": 4,
            "strategy": {
                "canary": {
                    "canaryService": "qwen-canary",
                    "stableService": "qwen-stable",
                    "trafficRouting": {"nginx": {"stableIngress": "qwen"}},
                    "steps": steps,
                }
            },
        },
        "status": {
            "phase": "Paused",
            "currentStepIndex": 1,
            "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-11-29T03:00:00Z"}],
            "canary": {
                "weights": {
                    "canary": {"weight": 10, "podTemplateHash": "7b9d8c6f5"},
                    "stable": {"weight": 90, "podTemplateHash": "5c4d3b2a1"},
                }
            },
        },
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
            peer = getattr(self.connection, "getpeercert", lambda: None)()
            if peer and dict(x[0] for x in peer["subject"]).get("commonName") == "fleetdeck-operator":
                return True  # authenticated by its client certificate, as the API server does
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
            path = path.removesuffix("/status")  # the status subresource patches the same object here
            params = dict(p.split("=", 1) for p in query.split("&") if p)
            if path not in api.objects:
                self.answer(404, status(404, "NotFound", "not found"))
                return
            kind = path.split("/")[-2]
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
    fake = FakeApiServer(
        {
            HTTPROUTE: httproute(),
            KSERVE: inference_service(),
            DEPLOYMENT: deployment(),
            REPLICASETS: replica_sets(),
            ROLLOUT: rollout(),
        }
    )
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
    targets = {
        "httproute": {"chat-a": "qwen-a", "chat-b": "qwen-b"},
        "kserve": {"chat-a": "previous", "chat-b": "latest"},
        "deployment": {"chat-a": "qwen"},
        "argo-rollout": {"chat-a": "stable", "chat-b": "canary"},
    }[resource]
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


UNDO_BODY = (
    b'[{"op":"replace","path":"/spec/template","value":{"metadata":{"labels":{"app":"qwen","tier":"serving"}},'
    b'"spec":{"containers":[{"name":"vllm","image":"vllm/vllm-openai:v0.31.0"}]}}},'
    b'{"op":"replace","path":"/metadata/annotations","value":{"kubectl.kubernetes.io/last-applied-configuration":"{}",'
    b'"deployment.kubernetes.io/revision":"4","team/note":"rev3"}}]'
)


async def test_deployment_rollback_is_kubectl_rollout_undo(tmp_path: Path, api: FakeApiServer, store: Store):
    actions = actions_for(tmp_path, api, store, resource="deployment")
    route = actions.routes["chat"]
    plan = await actions.plan(Action.ROLLBACK, route)
    assert plan.can_confirm and plan.needs_typing, plan
    assert plan.before.revision == "images vllm/vllm-openai:v0.32.0"
    assert plan.after.revision == "images vllm/vllm-openai:v0.31.0"
    assert plan.requests[0] == "back to ReplicaSet qwen-5d8f7c9b4 (revision 3)"
    assert api.requests == [
        ("GET", DEPLOYMENT, "", b""),
        ("GET", REPLICASETS, "", b""),
        (
            "PATCH",
            f"{DEPLOYMENT}?dryRun=All&fieldManager=fleetdeck",
            "application/json-patch+json",
            UNDO_BODY,
        ),
    ]
    outcome = await actions.execute(plan)
    assert outcome.ok, outcome
    assert api.requests[-2] == (
        "PATCH",
        f"{DEPLOYMENT}?fieldManager=fleetdeck",
        "application/json-patch+json",
        UNDO_BODY,
    )
    stored = api.objects[DEPLOYMENT]
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.31.0"
    assert "pod-template-hash" not in stored["spec"]["template"]["metadata"]["labels"]
    entry = (await store.audit_entries())[0]
    assert entry.before["revision"] == "images vllm/vllm-openai:v0.32.0"
    assert entry.after["revision"] == "images vllm/vllm-openai:v0.31.0"
    shift = await actions.plan(Action.SHIFT_TOWARD, route, "chat-a")
    assert "holds no traffic split" in shift.refusal
    await actions.close()


async def test_a_paused_deployment_is_not_rolled_back(tmp_path: Path, api: FakeApiServer, store: Store):
    api.objects[DEPLOYMENT] = deployment(paused=True)
    actions = actions_for(tmp_path, api, store, resource="deployment")
    plan = await actions.plan(Action.ROLLBACK, actions.routes["chat"])
    assert plan.refusal == "the Deployment is paused; resume it before rolling back"
    assert [r[0] for r in api.requests] == ["GET"]
    await actions.close()


async def test_argo_rollout_promote_and_abort(tmp_path: Path, api: FakeApiServer, store: Store):
    actions = actions_for(tmp_path, api, store, resource="argo-rollout")
    route = actions.routes["chat"]
    current = await actions.read(route)
    assert [(t.endpoint, t.weight) for t in current.targets] == [("chat-a", 90), ("chat-b", 10)]
    assert current.revision == "rollout paused"
    assert "Argo Rollouts owns the steps" in (await actions.plan(Action.SHIFT_AWAY, route, "chat-b")).refusal
    api.requests.clear()
    promote = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    assert promote.can_confirm and promote.after.revision == "rollout progressing", promote
    merge = "application/merge-patch+json"
    assert api.requests[1:] == [
        (
            "PATCH",
            f"{ROLLOUT}/status?dryRun=All&fieldManager=fleetdeck",
            merge,
            b'{"status":{"pauseConditions":null}}',
        ),
        ("PATCH", f"{ROLLOUT}?dryRun=All&fieldManager=fleetdeck", merge, b'{"spec":{"paused":false}}'),
    ]
    assert (await actions.execute(promote)).ok
    assert "pauseConditions" not in api.objects[ROLLOUT]["status"]
    assert api.objects[ROLLOUT]["spec"]["paused"] is False
    api.requests.clear()
    abort = await actions.plan(Action.ROLLBACK, route)
    assert abort.needs_typing and abort.after.revision == "rollout aborted"
    outcome = await actions.execute(abort)
    assert outcome.ok, outcome
    assert (
        "PATCH",
        f"{ROLLOUT}/status?fieldManager=fleetdeck",
        merge,
        b'{"status":{"abort":true}}',
    ) in api.requests
    assert api.objects[ROLLOUT]["status"]["abort"] is True
    assert "already aborted" in (await actions.plan(Action.ROLLBACK, route)).refusal
    await actions.close()


def test_client_certificate_and_ca_from_kubeconfig_over_real_tls(tmp_path: Path):
    import asyncio
    import base64
    import ssl

    import trustme

    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("fleetdeck-operator", common_name="fleetdeck-operator")
    fake = FakeApiServer({HTTPROUTE: httproute()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "tls",
                "clusters": [
                    {
                        "name": "tls",
                        "cluster": {
                            "server": f"https://127.0.0.1:{server.server_address[1]}",
                            "certificate-authority-data": b64(ca.cert_pem.bytes()),
                        },
                    }
                ],
                "contexts": [{"name": "tls", "context": {"cluster": "tls", "user": "operator"}}],
                "users": [
                    {
                        "name": "operator",
                        "user": {
                            "client-certificate-data": b64(client_cert.cert_chain_pems[0].bytes()),
                            "client-key-data": b64(client_cert.private_key_pem.bytes()),
                        },
                    }
                ],
            }
        )
    )
    creds = load_kubeconfig(path)
    assert creds.headers == {} and creds.source == f"kubeconfig {path} context tls"
    config = parse_config(
        {
            "endpoints": [{"name": "chat-a", "url": "http://10.0.0.5:8000"}],
            "routes": [
                {
                    "name": "chat",
                    "backend": {"kind": "kubernetes", "resource": "httproute", "namespace": "serving",
                                "name": "chat", "kubeconfig": str(path)},
                    "targets": {"chat-a": "qwen-a"},
                    "stable": "chat-a",
                }
            ],
        }
    )  # fmt: skip
    route = build_routes(config)["chat"]

    async def read() -> list[tuple[str, int]]:
        try:
            return [(t.endpoint, t.weight) for t in (await route.backend.read()).targets]
        finally:
            await route.backend.close()

    try:
        assert asyncio.run(read()) == [("chat-a", 90)]
    finally:
        server.shutdown()
        server.server_close()


async def test_deployment_rollback_to_the_pinned_image(tmp_path: Path, api: FakeApiServer, store: Store):
    path = kubeconfig(tmp_path, api.port)
    pinned = "vllm/vllm-openai@sha256:" + "4d1f" * 16

    def config(**backend: str) -> Any:
        return parse_config(
            {
                "endpoints": [{"name": "chat-a", "url": "http://10.0.0.5:8000", "pin": "qwen3-8b"}],
                "routes": [
                    {
                        "name": "chat",
                        "backend": {"kind": "kubernetes", "resource": "deployment", "namespace": "serving",
                                    "name": "qwen", "kubeconfig": str(path), "rollback_to": "pin", **backend},
                        "targets": {"chat-a": "qwen"},
                        "stable": "chat-a",
                    }
                ],
            }
        )  # fmt: skip

    asked: list[str] = []

    def pinned_image(endpoint: str) -> str | None:
        asked.append(endpoint)
        return pinned

    actions = Actions(build_routes(config(container="vllm"), pinned_image), store, operator=ALICE)
    plan = await actions.plan(Action.ROLLBACK, actions.routes["chat"])
    assert asked == ["chat-a"]
    assert plan.can_confirm, plan
    assert plan.after.revision == f"images {pinned}"
    body = (
        b'[{"op":"test","path":"/spec/template/spec/containers/0/image","value":"vllm/vllm-openai:v0.32.0"},'
        b'{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"'
        + pinned.encode()
        + b'"}]'
    )
    assert api.requests[-1] == (
        "PATCH",
        f"{DEPLOYMENT}?dryRun=All&fieldManager=fleetdeck",
        "application/json-patch+json",
        body,
    )
    assert (await actions.execute(plan)).ok
    assert api.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"] == pinned
    assert (
        "already runs the pinned image"
        in (await actions.plan(Action.ROLLBACK, actions.routes["chat"])).refusal
    )
    await actions.close()
    wrong = Actions(build_routes(config(container="sidecar"), pinned_image), store, operator=ALICE)
    assert "no container 'sidecar'" in (await wrong.plan(Action.ROLLBACK, wrong.routes["chat"])).refusal
    await wrong.close()
    unpinned = Actions(build_routes(config(), lambda endpoint: None), store, operator=ALICE)
    refusal = (await unpinned.plan(Action.ROLLBACK, unpinned.routes["chat"])).refusal
    assert refusal == "no image is pinned for chat-a's pin in the lock file"
    await unpinned.close()
