"""Kubernetes against a loopback API server that checks every request byte for byte and answers with the
API server's real shapes: objects, Status bodies, 403 from RBAC, 409 conflicts, 422 from a failed test op."""

from __future__ import annotations

import copy
import http.client
import json
import os
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from console.actions import Action, Actions, Operator, OutcomeKind, build_routes
from console.config import ConfigError, parse_config
from console.control import ControlError
from console.control.kubernetes import credentials_for, in_cluster, load_kubeconfig, route_for
from console.store import AuditOutcome, Store
from widgets.confirm import plan_text

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


def inference_service(mode: str = "Serverless") -> dict[str, Any]:
    """Serverless: Knative's traffic in status.components.predictor.traffic (KServe ksvc_reconciler.go tags
    the previous revision `prev`); Standard: spec.canary and status.canaryStatuses."""
    obj: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "qwen",
            "namespace": "serving",
            "resourceVersion": "88",
            "annotations": {"serving.kserve.io/deploymentMode": mode},
        },
        "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"}}}},
        "status": {"deploymentMode": mode},
    }
    if mode == "Serverless":
        obj["spec"]["predictor"]["canaryTrafficPercent"] = 20
        obj["status"]["components"] = {
            "predictor": {
                "latestReadyRevision": "qwen-predictor-00002",
                "latestCreatedRevision": "qwen-predictor-00002",
                "previousRolledoutRevision": "qwen-predictor-00001",
                "latestRolledoutRevision": "qwen-predictor-00001",
                "traffic": knative_traffic(20),
            }
        }
    else:
        obj["spec"]["predictor"]["name"] = "qwen-v1"
        obj["spec"]["canary"] = [
            {
                "predictor": {"name": "qwen-v2", "model": {"modelFormat": {"name": "huggingface"}}},
                "trafficPercent": 20,
            }
        ]
        obj["status"]["canaryStatuses"] = [{"name": "qwen-v2", "ready": True, "trafficPercent": 20}]
    return obj


def knative_traffic(latest: int) -> list[dict[str, Any]]:
    traffic: list[dict[str, Any]] = [
        {"latestRevision": True, "percent": latest, "revisionName": "qwen-predictor-00002"}
    ]
    if latest < 100:
        traffic.append(
            {
                "latestRevision": False,
                "percent": 100 - latest,
                "revisionName": "qwen-predictor-00001",
                "tag": "prev",
            }
        )
    return traffic


def kserve_controller(obj: dict[str, Any]) -> None:
    """KServe and Knative catching up with the spec: the traffic that status reports."""
    if "canary" in obj["spec"]:
        obj["status"]["canaryStatuses"] = [
            {"name": c["predictor"]["name"], "ready": True, "trafficPercent": c["trafficPercent"]}
            for c in obj["spec"]["canary"]
        ]
    else:
        percent = obj["spec"]["predictor"].get("canaryTrafficPercent", 100)
        obj["status"]["components"]["predictor"]["traffic"] = knative_traffic(percent)


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
            "message": "CanaryPauseStep",
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


def inconclusive_rollout() -> dict[str, Any]:
    obj = rollout()
    obj["spec"]["strategy"]["canary"]["steps"] = [
        {"setWeight": 10},
        {"pause": {}},
        {"analysis": {"templates": [{"templateName": "ttft-p99"}]}},
        {"setWeight": 50},
        {"pause": {"duration": "10m"}},
    ]
    obj["status"].update(
        currentStepIndex=2,
        message="InconclusiveAnalysisRun",
        pauseConditions=[{"reason": "InconclusiveAnalysisRun", "startTime": "2026-11-29T03:10:00Z"}],
    )
    obj["status"]["canary"]["currentStepAnalysisRunStatus"] = {
        "name": "qwen-7b9d8c6f5-3",
        "status": "Inconclusive",
    }
    return obj


def weights(obj: dict[str, Any], canary: int) -> None:
    obj["status"]["canary"]["weights"]["canary"]["weight"] = canary
    obj["status"]["canary"]["weights"]["stable"]["weight"] = 100 - canary


def argo_controller(obj: dict[str, Any]) -> None:
    """Argo's controller reacting to a status patch: an abort goes Degraded with the canary at weight 0; a
    cleared pause completes the step and walks on to the next pause; an inconclusive analysis whose
    controllerPause is still set pauses the rollout again."""
    status, steps = obj["status"], obj["spec"]["strategy"]["canary"]["steps"]
    if status.get("abort"):
        status.update(phase="Degraded", message="RolloutAborted: Rollout aborted update to revision 2")
        status.pop("pauseConditions", None)
        weights(obj, 0)
        return
    analysis = status["canary"].get("currentStepAnalysisRunStatus", {}).get("status")
    if status.get("controllerPause") and analysis == "Inconclusive":
        status["pauseConditions"] = [
            {"reason": "InconclusiveAnalysisRun", "startTime": "2026-11-29T03:20:00Z"}
        ]
        return
    if status.get("pauseConditions"):
        return
    index = status.get("currentStepIndex", 0)
    if status.get("controllerPause") and "pause" in steps[index]:
        index += 1  # the pause this step made was cleared: the step is complete
    status["controllerPause"] = False
    while index < len(steps):
        step = steps[index]
        if "setWeight" in step:
            weights(obj, step["setWeight"])
        elif "pause" in step:
            status.update(phase="Paused", controllerPause=True)
            status["pauseConditions"] = [{"reason": "CanaryPauseStep", "startTime": "2026-11-29T03:30:00Z"}]
            break
        index += 1
    else:
        status.update(phase="Healthy")
        weights(obj, 0)
    status["currentStepIndex"] = index


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


# what the API server answers when any JSON-patch op fails, a `test` included: apiserver's
# endpoints/handlers/patch.go returns apimachinery's NewGenericServerResponse(422, ...) with an empty
# resource and name, so the message is the generic one, details is empty and the op's own error is dropped
TEST_FAILED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "the server rejected our request due to an error in our request",
    "reason": "Invalid",
    "details": {},
    "code": 422,
}


class PatchFailed(Exception):
    pass


def json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 for the ops fleetdeck sends (test, replace, add); any failure raises PatchFailed."""
    result = copy.deepcopy(obj)
    for op in ops:
        *parents, last = [int(p) if p.isdigit() else p for p in op["path"].strip("/").split("/")]
        node: Any = result
        try:
            for part in parents:
                node = node[part]
            if op["op"] == "test":
                if node[last] != op["value"]:
                    raise PatchFailed(op["path"])
            elif op["op"] == "replace":
                node[last]  # noqa: B018 - replace needs the member to exist
                node[last] = op["value"]
            elif op["op"] == "add":
                node[last] = op["value"]
            else:
                raise PatchFailed(op["op"])
        except (KeyError, IndexError, TypeError):
            raise PatchFailed(op["path"]) from None
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


Controller = Callable[[dict[str, Any]], None]


@dataclass
class FakeApiServer:
    objects: dict[str, dict[str, Any]]
    requests: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    forbid_patch: bool = False
    conflict_next: bool = False
    change_underneath: dict[str, Any] | None = None  # applied just before the next real PATCH
    port: int = 0
    token: str = TOKEN
    # a simulated controller per object path: after a real PATCH, it changes the object's status when the
    # object has been read `controller_delay` more times (the read-back races it, as in a cluster)
    controllers: dict[str, Controller] = field(default_factory=dict)
    controller_delay: int = 2
    pending: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bump(self, path: str) -> None:
        meta = self.objects[path]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)


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
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                self.answer(401, status(401, "Unauthorized", "Unauthorized"))
                return False
            return True

        def do_GET(self) -> None:
            api.requests.append(("GET", self.path, "", b""))
            if not self.authorised():
                return
            with api.lock:
                if self.path not in api.objects:
                    self.answer(404, status(404, "NotFound", "not found"))
                    return
                if self.path in api.pending:
                    api.pending[self.path] -= 1
                    if api.pending[self.path] <= 0:
                        del api.pending[self.path]
                        api.controllers[self.path](api.objects[self.path])
                        api.bump(self.path)
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
            with api.lock:
                self.patch(path, params, content_type, body)

        def patch(self, path: str, params: dict[str, str], content_type: str, body: bytes) -> None:
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
                try:
                    patched = json_patch(current, json.loads(body))
                except PatchFailed:
                    self.answer(422, TEST_FAILED)
                    return
            elif content_type == "application/merge-patch+json":
                patched = merge_patch(current, json.loads(body))
            else:
                message = (
                    "the body of the request was in an unknown format - accepted media types include:"
                    " application/json-patch+json, application/merge-patch+json"
                )
                self.answer(415, status(415, "UnsupportedMediaType", message))
                return
            if params.get("fieldManager") != "fleetdeck":
                self.answer(400, status(400, "BadRequest", "fieldManager must be fleetdeck in this test"))
                return
            if not dry:
                version = int(current["metadata"]["resourceVersion"]) + 1
                patched["metadata"]["resourceVersion"] = str(version)
                api.objects[path] = patched
                if path in api.controllers:
                    api.pending[path] = api.controller_delay
            self.answer(200, patched)

        def log_message(self, *args: object) -> None:
            return None

    return Handler


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


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
    with serve(handler_for(fake)) as port:
        fake.port = port
        yield fake


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


def actions_for(
    tmp_path: Path,
    api: FakeApiServer,
    store: Store,
    resource: str = "httproute",
    targets: dict[str, str] | None = None,
    **backend: Any,
) -> Actions:
    path = kubeconfig(tmp_path, api.port)
    targets = (
        targets
        or {
            "httproute": {"chat-a": "qwen-a", "chat-b": "qwen-b"},
            "kserve": {"chat-a": "previous", "chat-b": "latest"},
            "deployment": {"chat-a": "qwen"},
            "argo-rollout": {"chat-a": "stable", "chat-b": "canary"},
        }[resource]
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
                        **backend,
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


async def test_a_failed_test_op_is_the_api_servers_422_and_means_stale(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    actions = actions_for(tmp_path, api, store)
    route = actions.routes["chat"]
    plan = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    moved = httproute()
    moved["spec"]["rules"][0]["backendRefs"][1]["weight"] = 50
    moved["metadata"]["resourceVersion"] = "4800"
    api.change_underneath = moved  # between the re-read and the PATCH
    outcome = await actions.execute(plan)
    assert outcome.kind is OutcomeKind.STALE, outcome
    assert "422 Invalid: a test op failed: the object changed since the plan" in outcome.message
    assert "it is now chat-a 90, chat-b 50" in outcome.message
    assert [r["weight"] for r in api.objects[HTTPROUTE]["spec"]["rules"][0]["backendRefs"]] == [90, 50]
    assert (await store.audit_entries())[0].outcome is AuditOutcome.REFUSED
    again = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    assert again.rows()[1] == ("chat-b", "50", "46", 36, 46)
    assert (await actions.execute(again)).ok
    await actions.close()


async def test_a_422_that_is_not_a_failed_test_stays_a_failure(tmp_path: Path, store: Store):
    """Validation errors are 422 Invalid too, but name their causes: those are not "changed since"."""

    class Invalid(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.reply(200, httproute())

        def do_PATCH(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            message = (
                'HTTPRoute.gateway.networking.k8s.io "chat" is invalid: spec.rules[0].backendRefs[1].weight:'
                " Invalid value: 2000000: spec.rules[0].backendRefs[1].weight in body should be less than or"
                " equal to 1000000"
            )
            cause = {"reason": "FieldValueInvalid", "message": "Invalid value", "field": "spec.rules[0]"}
            body = status(422, "Invalid", message, name="chat", group="gateway.networking.k8s.io")
            body["details"]["causes"] = [cause]
            self.reply(422, body)

        def reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return None

    with serve(Invalid) as port:
        fake = FakeApiServer({}, port=port)
        actions = actions_for(tmp_path, fake, store)
        plan = await actions.plan(Action.SHIFT_TOWARD, actions.routes["chat"], "chat-b")
        assert plan.refusal.startswith(
            "dry run failed: kubernetes 127.0.0.1: PATCH httproute serving/chat: 422"
        )
        assert "is invalid: spec.rules[0].backendRefs[1].weight" in plan.refusal
        await actions.close()


def two_rule_route() -> dict[str, Any]:
    """Two rules, one named; in the first, a backendRef of the canary's name in another namespace (not a
    target, with weight) and one the route does not know; the second rule left at an older split."""
    obj = httproute()
    obj["spec"]["rules"] = [
        {
            "name": "chat",
            "matches": [{"path": {"type": "PathPrefix", "value": "/v1/chat"}}],
            "backendRefs": [
                {"name": "qwen-b", "namespace": "canary", "port": 8000, "weight": 5},
                {"group": "", "kind": "Service", "name": "qwen-a", "port": 8000, "weight": 90},
                {"name": "qwen-b", "port": 8000, "weight": 10},
            ],
        },
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/v1/completions"}}],
            "backendRefs": [
                {"name": "qwen-a", "namespace": "serving", "port": 8000, "weight": 80},
                {"name": "qwen-b", "port": 8000, "weight": 20},
            ],
        },
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/metrics"}}],
            "backendRefs": [{"name": "other"}],
        },
    ]
    return obj


async def test_httproute_every_rule_full_identity_and_unlisted_weight(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    api.objects[HTTPROUTE] = two_rule_route()
    actions = actions_for(tmp_path, api, store)
    route = actions.routes["chat"]
    current = await actions.read(route)
    assert [(t.endpoint, t.weight) for t in current.targets] == [("chat-a", 90), ("chat-b", 10)]
    assert "rule 0 (chat) also sends traffic to Service canary/qwen-b:8000 weight 5" in current.revision
    assert "rule 1 splits chat-a 80, chat-b 20, unlike rule 0 (chat)" in current.revision
    plan = await actions.plan(Action.ROLLBACK, route)
    assert plan.can_confirm, plan
    assert any("canary/qwen-b:8000 weight 5" in note for note in plan.notes)
    body = json.loads(plan.requests[2])
    assert body == [
        {"op": "test", "path": "/spec/rules/0/backendRefs/1/weight", "value": 90},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 100},
        {"op": "test", "path": "/spec/rules/0/backendRefs/2/weight", "value": 10},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/2/weight", "value": 0},
        {"op": "test", "path": "/spec/rules/1/backendRefs/0/weight", "value": 80},
        {"op": "replace", "path": "/spec/rules/1/backendRefs/0/weight", "value": 100},
        {"op": "test", "path": "/spec/rules/1/backendRefs/1/weight", "value": 20},
        {"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": 0},
    ]
    outcome = await actions.execute(plan)
    rules = api.objects[HTTPROUTE]["spec"]["rules"]
    assert [r.get("weight") for r in rules[0]["backendRefs"]] == [
        5,
        100,
        0,
    ]  # the other namespace's untouched
    assert [r["weight"] for r in rules[1]["backendRefs"]] == [100, 0]
    # the unlisted backendRef still gets traffic: never "verified"
    assert outcome.kind is OutcomeKind.FAILED, outcome
    assert outcome.message.startswith("MISMATCH") and "canary/qwen-b:8000 weight 5" in outcome.message
    await actions.close()


async def test_httproute_targets_name_namespace_and_port(tmp_path: Path, api: FakeApiServer, store: Store):
    obj = two_rule_route()
    obj["spec"]["rules"][0]["backendRefs"][0]["weight"] = 0
    obj["spec"]["rules"][1]["backendRefs"][1]["port"] = 9000  # the second rule's canary listens elsewhere
    api.objects[HTTPROUTE] = obj
    targets = {"chat-a": "serving/qwen-a:8000", "chat-b": "Service/canary/qwen-b"}
    actions = actions_for(tmp_path, api, store, targets=targets)
    route = actions.routes["chat"]
    current = await actions.read(route)
    assert [(t.endpoint, t.weight) for t in current.targets] == [("chat-a", 90), ("chat-b", 0)]
    # rule 0's serving/qwen-b and rule 1's qwen-b:9000 are not targets here; they carry weight
    assert "Service serving/qwen-b:8000 weight 10" in current.revision
    assert "Service serving/qwen-b:9000 weight 20" in current.revision
    await actions.close()
    with pytest.raises(
        ConfigError, match=r"targets.chat-b: .qwen-b:http.: the port after .:. must be a number"
    ):
        parse_config(
            {
                "endpoints": [{"name": "chat-b", "url": "http://10.0.0.6:8000"}],
                "routes": [
                    {
                        "name": "chat",
                        "backend": {"kind": "kubernetes", "resource": "httproute", "name": "chat"},
                        "targets": {"chat-b": "qwen-b:http"},
                        "stable": "chat-b",
                    }
                ],
            }
        )


async def test_httproute_two_refs_of_one_target_in_a_rule_are_refused(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    obj = httproute()
    obj["spec"]["rules"][0]["backendRefs"].append({"name": "qwen-b", "port": 9000, "weight": 1})
    api.objects[HTTPROUTE] = obj
    actions = actions_for(tmp_path, api, store)
    with pytest.raises(ControlError, match=r"rule 0 has two backendRefs for target chat-b .*name the port"):
        await actions.read(actions.routes["chat"])
    await actions.close()


async def test_rbac_403_shows_the_plan_but_blocks_it(tmp_path: Path, api: FakeApiServer, store: Store):
    api.forbid_patch = True
    actions = actions_for(tmp_path, api, store)
    plan = await actions.plan(Action.SHIFT_TOWARD, actions.routes["chat"], "chat-b")
    assert not plan.can_confirm
    assert 'cannot patch resource "httproutes"' in plan.blocked
    assert plan.rows()[1] == ("chat-b", "10", "20", 10, 20)
    await actions.close()


async def test_kserve_serverless_rollback_verified_by_knative_traffic(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    api.controllers[KSERVE] = kserve_controller
    api.objects[KSERVE]["status"]["components"]["predictor"]["traffic"] = knative_traffic(30)  # spec says 20
    actions = actions_for(tmp_path, api, store, resource="kserve")
    route = actions.routes["chat"]
    current = await actions.read(route)
    assert [(t.endpoint, t.weight) for t in current.targets] == [("chat-a", 70), ("chat-b", 30)]
    assert current.revision == "latest revision qwen-predictor-00002"
    plan = await actions.plan(Action.ROLLBACK, route)
    body = (
        b'[{"op":"test","path":"/spec/predictor/canaryTrafficPercent","value":20},'
        b'{"op":"replace","path":"/spec/predictor/canaryTrafficPercent","value":0}]'
    )
    assert api.requests[-1] == (
        "PATCH",
        f"{KSERVE}?dryRun=All&fieldManager=fleetdeck",
        "application/json-patch+json",
        body,
    )
    api.requests.clear()
    outcome = await actions.execute(plan)
    assert outcome.ok, outcome
    assert api.requests[1] == (
        "PATCH",
        f"{KSERVE}?fieldManager=fleetdeck",
        "application/json-patch+json",
        body,
    )
    # the first read-back still showed the old traffic; the controller moved it on the second
    assert [r[0] for r in api.requests[2:]] == ["GET", "GET"]
    assert api.objects[KSERVE]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert api.objects[KSERVE]["spec"]["predictor"]["model"] == {"modelFormat": {"name": "huggingface"}}
    assert api.objects[KSERVE]["status"]["components"]["predictor"]["traffic"] == knative_traffic(0)
    await actions.close()


async def test_kserve_traffic_that_does_not_move_is_not_verified(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    actions = actions_for(tmp_path, api, store, resource="kserve")  # no controller: the status stays
    route = actions.routes["chat"]
    route.backend.settle_seconds = 0.3
    outcome = await actions.execute(await actions.plan(Action.ROLLBACK, route))
    assert outcome.kind is OutcomeKind.FAILED, outcome
    assert "status.components.predictor.traffic is not the planned split" in outcome.message
    assert "after waiting 0.3 s for the controller" in outcome.message
    await actions.close()


async def test_kserve_standard_mode_moves_spec_canary(tmp_path: Path, api: FakeApiServer, store: Store):
    api.objects[KSERVE] = inference_service("RawDeployment")
    api.controllers[KSERVE] = kserve_controller
    targets = {"chat-a": "qwen-v1", "chat-b": "qwen-v2"}
    actions = actions_for(tmp_path, api, store, resource="kserve", targets=targets)
    route = actions.routes["chat"]
    current = await actions.read(route)
    assert [(t.endpoint, t.weight) for t in current.targets] == [("chat-a", 80), ("chat-b", 20)]
    plan = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    assert plan.can_confirm, plan
    assert json.loads(plan.requests[2]) == [
        {"op": "test", "path": "/spec/canary/0/predictor/name", "value": "qwen-v2"},
        {"op": "test", "path": "/spec/canary/0/trafficPercent", "value": 20},
        {"op": "replace", "path": "/spec/canary/0/trafficPercent", "value": 30},
    ]
    outcome = await actions.execute(plan)
    assert outcome.ok, outcome
    assert api.objects[KSERVE]["status"]["canaryStatuses"][0]["trafficPercent"] == 30
    await actions.close()


async def test_kserve_modes_without_a_canary_are_refused_clearly(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    raw = inference_service("Standard")
    del raw["spec"]["canary"], raw["status"]["canaryStatuses"]
    raw["spec"]["predictor"]["canaryTrafficPercent"] = 20
    api.objects[KSERVE] = raw
    actions = actions_for(tmp_path, api, store, resource="kserve")
    with pytest.raises(ControlError, match=r"Standard \(RawDeployment\) mode has no spec.canary.*"
                       r"canaryTrafficPercent is ignored in this mode"):  # fmt: skip
        await actions.read(actions.routes["chat"])
    api.objects[KSERVE]["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "ModelMesh"
    with pytest.raises(ControlError, match="deployment mode 'ModelMesh' has no canary traffic split"):
        await actions.read(actions.routes["chat"])
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
    assert creds.authorization() == {"Authorization": "Bearer sa-token"}
    assert isinstance(creds.verify, ssl.SSLContext) and creds.verify.get_ca_certs()


UNDO_BODY = (
    b'[{"op":"test","path":"/metadata/resourceVersion","value":"500"},'
    b'{"op":"replace","path":"/spec/template","value":{"metadata":{"labels":{"app":"qwen","tier":"serving"}},'
    b'"spec":{"containers":[{"name":"vllm","image":"vllm/vllm-openai:v0.31.0"}]}}},'
    b'{"op":"replace","path":"/metadata/annotations","value":{"kubectl.kubernetes.io/last-applied-configuration":"{}",'
    b'"deployment.kubernetes.io/revision":"4","team/note":"rev3"}}]'
)


async def test_deployment_rollback_is_kubectl_rollout_undo(tmp_path: Path, api: FakeApiServer, store: Store):
    actions = actions_for(tmp_path, api, store, resource="deployment")
    route = actions.routes["chat"]
    plan = await actions.plan(Action.ROLLBACK, route)
    assert plan.can_confirm and plan.needs_typing, plan
    assert plan.before.revision.startswith("images vllm/vllm-openai:v0.32.0; template ")
    assert plan.after.revision.startswith("images vllm/vllm-openai:v0.31.0; template ")
    assert plan.requests[:2] == (
        "back to ReplicaSet qwen-5d8f7c9b4 (revision 3)",
        'changes spec.containers[vllm].image: "vllm/vllm-openai:v0.32.0" -> "vllm/vllm-openai:v0.31.0"',
    )
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
        UNDO_BODY,  # nothing changed since the plan: the same resourceVersion
    )
    stored = api.objects[DEPLOYMENT]
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.31.0"
    assert "pod-template-hash" not in stored["spec"]["template"]["metadata"]["labels"]
    entry = (await store.audit_entries())[0]
    assert entry.before["revision"] == plan.before.revision
    assert entry.after["revision"] == plan.after.revision
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
    assert creds.authorization() == {} and creds.source == f"kubeconfig {path} context tls"
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
    assert plan.after.revision.startswith(f"images {pinned}; template ")
    body = (
        b'[{"op":"test","path":"/metadata/resourceVersion","value":"500"},'
        b'{"op":"test","path":"/spec/template/spec/containers/0/image","value":"vllm/vllm-openai:v0.32.0"},'
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


def with_args(obj: dict[str, Any], args: list[str]) -> dict[str, Any]:
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = args
    return obj


def flag_only_history(api: FakeApiServer) -> None:
    """Revision 4 runs the same image as revision 3 with a bad --max-model-len."""
    api.objects[DEPLOYMENT] = with_args(deployment(), ["--max-model-len", "131072"])
    listing = replica_sets()
    listing["items"][1] = with_args(
        replica_set("qwen-5d8f7c9b4", 3, "vllm/vllm-openai:v0.32.0", UID), ["--max-model-len", "32768"]
    )
    listing["items"][2] = with_args(listing["items"][2], ["--max-model-len", "131072"])
    api.objects[REPLICASETS] = listing


UID = "7c1d2e3f-0000-4000-8000-000000000001"


async def test_deployment_rollback_of_a_flag_only_change(tmp_path: Path, api: FakeApiServer, store: Store):
    flag_only_history(api)
    actions = actions_for(tmp_path, api, store, resource="deployment")
    plan = await actions.plan(Action.ROLLBACK, actions.routes["chat"])
    assert plan.can_confirm, plan
    assert plan.before.revision != plan.after.revision
    assert plan.after.revision.startswith("images vllm/vllm-openai:v0.32.0; template ")
    assert plan.requests[:2] == (
        "back to ReplicaSet qwen-5d8f7c9b4 (revision 3)",
        'changes spec.containers[vllm].args: ["--max-model-len","131072"] -> ["--max-model-len","32768"]',
    )
    outcome = await actions.execute(plan)
    assert outcome.ok, outcome
    container = api.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--max-model-len", "32768"]
    await actions.close()


async def test_a_rollout_between_plan_and_confirm_is_stale(tmp_path: Path, api: FakeApiServer, store: Store):
    flag_only_history(api)
    actions = actions_for(tmp_path, api, store, resource="deployment")
    route = actions.routes["chat"]
    plan = await actions.plan(Action.ROLLBACK, route)
    # someone rolls out revision 5: the same image, new args
    newer = with_args(deployment(), ["--max-model-len", "65536"])
    newer["metadata"]["resourceVersion"] = "520"
    newer["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "5"
    api.objects[DEPLOYMENT] = newer
    api.objects[REPLICASETS]["items"].append(
        with_args(
            replica_set("qwen-8d7c6b5a4", 5, "vllm/vllm-openai:v0.32.0", UID), ["--max-model-len", "65536"]
        )
    )
    outcome = await actions.execute(plan)
    assert outcome.kind is OutcomeKind.STALE, outcome
    assert "changed since the plan was shown" in outcome.message
    args = api.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--max-model-len", "65536"]
    # and landing between the re-read and the PATCH: the resourceVersion test fails with the API's 422
    plan = await actions.plan(Action.ROLLBACK, route)
    assert plan.requests[0] == "back to ReplicaSet qwen-7f6c5b4d9 (revision 4)"
    api.change_underneath = copy.deepcopy(newer)
    api.change_underneath["metadata"]["resourceVersion"] = "530"
    api.change_underneath["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "VLLM_USE_V1", "value": "1"}
    ]
    outcome = await actions.execute(plan)
    assert outcome.kind is OutcomeKind.STALE, outcome
    assert "422 Invalid: a test op failed" in outcome.message
    assert api.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["env"]
    plan = await actions.plan(Action.ROLLBACK, route)
    assert (await actions.execute(plan)).ok
    args = api.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--max-model-len", "131072"]
    await actions.close()


@pytest.mark.parametrize("delay", [1, 3])
async def test_argo_abort_waits_for_the_controller(
    tmp_path: Path, api: FakeApiServer, store: Store, delay: int
):
    api.controllers[ROLLOUT] = argo_controller
    api.controller_delay = delay  # the controller reacts on the first, or only the third, read-back
    actions = actions_for(tmp_path, api, store, resource="argo-rollout")
    route = actions.routes["chat"]
    current = await actions.read(route)
    assert [(t.endpoint, t.weight) for t in current.targets] == [("chat-a", 90), ("chat-b", 10)]
    assert current.revision == "rollout paused at step 2 of 4"
    assert "Argo Rollouts owns the steps" in (await actions.plan(Action.SHIFT_AWAY, route, "chat-b")).refusal
    abort = await actions.plan(Action.ROLLBACK, route)
    assert abort.needs_typing and abort.after.revision == "rollout aborted"
    assert [(t.endpoint, t.weight) for t in abort.after.targets] == [("chat-a", 100), ("chat-b", 0)]
    assert any("will roll it out again" in note for note in abort.notes)
    assert "note     the Rollout's template still names the new version" in plan_text(abort).plain
    api.requests.clear()
    outcome = await actions.execute(abort)
    assert outcome.ok, outcome
    assert "unless spec.template is set back to the old version" in outcome.message
    merge = "application/merge-patch+json"
    assert api.requests[1] == (
        "PATCH",
        f"{ROLLOUT}/status?fieldManager=fleetdeck",
        merge,
        b'{"status":{"abort":true}}',
    )
    assert [r[0] for r in api.requests[2:]] == ["GET"] * delay
    assert api.objects[ROLLOUT]["status"]["phase"] == "Degraded"
    assert "already aborted" in (await actions.plan(Action.ROLLBACK, route)).refusal
    await actions.close()


async def test_argo_promote_steps_on_as_kubectl_argo_rollouts_does(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    api.controllers[ROLLOUT] = argo_controller
    actions = actions_for(tmp_path, api, store, resource="argo-rollout")
    route = actions.routes["chat"]
    promote = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    assert promote.can_confirm and promote.after.revision == "rollout promoted past step 2 of 4", promote
    merge = "application/merge-patch+json"
    assert api.requests[1:] == [
        (
            "PATCH",
            f"{ROLLOUT}/status?dryRun=All&fieldManager=fleetdeck",
            merge,
            b'{"status":{"pauseConditions":null}}',
        ),
    ]
    outcome = await actions.execute(promote)
    assert outcome.ok, outcome
    assert "rollout paused at step 4 of 4; chat-a 50, chat-b 50" in outcome.message
    api.objects[ROLLOUT]["spec"]["paused"] = True  # paused by hand as well: promote unpauses the spec too
    promote = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    assert [line for line in promote.requests if line.startswith("{")] == [
        '{"status":{"pauseConditions":null}}',
        '{"spec":{"paused":false}}',
    ]
    await actions.close()


async def test_argo_promote_clears_an_inconclusive_analysis(tmp_path: Path, api: FakeApiServer, store: Store):
    api.objects[ROLLOUT] = inconclusive_rollout()
    api.controllers[ROLLOUT] = argo_controller
    actions = actions_for(tmp_path, api, store, resource="argo-rollout")
    route = actions.routes["chat"]
    promote = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    assert (
        promote.requests[2]
        == '{"status":{"pauseConditions":null,"controllerPause":false,"currentStepIndex":3}}'
    )
    outcome = await actions.execute(promote)
    assert outcome.ok, outcome
    status = api.objects[ROLLOUT]["status"]
    assert status["currentStepIndex"] == 4 and status["canary"]["weights"]["canary"]["weight"] == 50
    await actions.close()


async def test_argo_promote_that_leaves_the_rollout_stuck_is_not_verified(
    tmp_path: Path, api: FakeApiServer, store: Store
):
    """Clearing only pauseConditions (as a plain promote does) leaves an inconclusive rollout paused."""
    obj = inconclusive_rollout()
    api.objects[ROLLOUT] = obj
    api.controllers[ROLLOUT] = argo_controller
    actions = actions_for(tmp_path, api, store, resource="argo-rollout")
    route = actions.routes["chat"]
    route.backend.settle_seconds = 0.3
    promote = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
    route.backend._patches = [(f"{ROLLOUT}/status", b'{"status":{"pauseConditions":null}}')]
    outcome = await actions.execute(promote)
    assert outcome.kind is OutcomeKind.FAILED, outcome
    assert "the rollout is still at step 3 of 5 (paused)" in outcome.message
    await actions.close()


def test_a_kubeconfig_list_is_merged_as_client_go_merges_it(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "config").write_text(
        "current-context: gpu\n"
        "contexts: [{name: gpu, context: {cluster: gpu, user: ops, namespace: llm}}]\n"
        "clusters: [{name: gpu, cluster: {server: 'https://gpu.example:6443', tls-server-name: api.gpu}}]\n"
    )
    (second / "config").write_text(
        "current-context: other\n"
        "clusters: [{name: gpu, cluster: {server: 'https://ignored.example'}}]\n"
        "users: [{name: ops, user: {token: inline-token, tokenFile: token}}]\n"
    )
    (second / "token").write_text("file-token\n")
    env = {
        "KUBECONFIG": os.pathsep.join(
            [str(first / "config"), str(tmp_path / "missing"), str(second / "config")]
        )
    }
    backend = (
        parse_config(
            {
                "endpoints": [{"name": "chat-a", "url": "http://10.0.0.5:8000"}],
                "routes": [
                    {
                        "name": "chat",
                        "backend": {"kind": "kubernetes", "resource": "httproute", "name": "chat"},
                        "targets": {"chat-a": "qwen-a"},
                        "stable": "chat-a",
                    }
                ],
            }
        )
        .routes[0]
        .backend
    )
    creds = credentials_for(backend, env)
    assert creds.server == "https://gpu.example:6443"  # the first file to name a cluster wins
    assert creds.namespace == "llm"
    assert creds.authorization() == {"Authorization": "Bearer file-token"}  # relative to its own file; wins
    assert isinstance(creds.verify, ssl.SSLContext) and creds.verify.server_name == "api.gpu"  # type: ignore[attr-defined]
    with pytest.raises(ControlError, match="none of these files exists"):
        credentials_for(backend, {"KUBECONFIG": str(tmp_path / "missing")})


async def test_a_rotated_token_file_is_read_again(tmp_path: Path, api: FakeApiServer, store: Store):
    path = kubeconfig(tmp_path, api.port)
    now = [1000.0]
    creds = load_kubeconfig(path, clock=lambda: now[0])
    config = parse_config(
        {
            "endpoints": [{"name": "chat-a", "url": "http://10.0.0.5:8000"}],
            "routes": [
                {
                    "name": "chat",
                    "backend": {"kind": "kubernetes", "resource": "httproute", "name": "chat"},
                    "targets": {"chat-a": "qwen-a"},
                    "stable": "chat-a",
                }
            ],
        }
    )
    backend = route_for("chat", config.routes[0].backend, {"chat-a": "qwen-a"}, "chat-a", credentials=creds)
    assert backend.path == HTTPROUTE  # no namespace configured: the context's
    assert (await backend.read()).targets[0].weight == 90
    api.token = "rotated-token"
    (tmp_path / "token").write_text("rotated-token\n")
    now[0] += 30
    with pytest.raises(ControlError, match="401 Unauthorized"):
        await backend.read()  # client-go waits a minute as well
    now[0] += 31
    assert (await backend.read()).targets[0].weight == 90
    (tmp_path / "token").unlink()
    now[0] += 61
    assert (await backend.read()).targets[0].weight == 90  # the last good token stays
    await backend.close()


def test_exec_plugins_are_refused_with_what_works_instead(tmp_path: Path):
    path = tmp_path / "kubeconfig"
    path.write_text(
        "current-context: eks\n"
        "contexts: [{name: eks, context: {cluster: eks, user: eks}}]\n"
        "clusters: [{name: eks, cluster: {server: 'https://ABC.gr7.eu-west-1.eks.amazonaws.com'}}]\n"
        "users: [{name: eks, user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws,"
        " args: [eks, get-token, --cluster-name, gpu]}}}]\n"
    )
    with pytest.raises(ControlError) as caught:
        load_kubeconfig(path)
    message = str(caught.value)
    assert "\n" not in message
    assert "gets its credentials from an exec plugin (aws)" in message
    for way in ("token_env", "tokenFile", "kubectl create token", "in_cluster = true"):
        assert way in message
    creds = load_kubeconfig(path, token="from-env")
    assert creds.authorization() == {"Authorization": "Bearer from-env"}


def test_a_missing_in_cluster_ca_is_one_clear_line(tmp_path: Path):
    (tmp_path / "token").write_text("sa-token\n")
    with pytest.raises(ControlError) as caught:
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, tmp_path)
    assert str(caught.value) == (
        f"in_cluster: no CA certificate at {tmp_path / 'ca.crt'} (is the service account token mounted?)"
    )


class Proxy(BaseHTTPRequestHandler):
    """A forward proxy on loopback: absolute-form requests for http://, CONNECT tunnels for https://."""

    seen: list[str] = []

    def do_CONNECT(self) -> None:
        self.seen.append(f"CONNECT {self.path}")
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 5)
            if not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)
        upstream.close()

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        url = urlsplit(self.path)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "host")}
        connection.request("GET", url.path + (f"?{url.query}" if url.query else ""), headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        connection.close()

    def log_message(self, *args: object) -> None:
        return None


async def test_proxy_url_is_used_for_plain_http(tmp_path: Path, api: FakeApiServer):
    path = kubeconfig(tmp_path, api.port)
    with serve(Proxy) as proxy:
        text = path.read_text().replace(
            f"server: http://127.0.0.1:{api.port}",
            f"server: http://127.0.0.1:{api.port}\n    proxy-url: http://127.0.0.1:{proxy}",
        )
        path.write_text(text)
        Proxy.seen = []
        backend = route_for("chat", httproute_backend(path), {"chat-a": "qwen-a"}, "chat-a")
        assert (await backend.read()).targets[0].weight == 90
        await backend.close()
    assert Proxy.seen == [f"GET http://127.0.0.1:{api.port}{HTTPROUTE}"]


def httproute_backend(path: Path) -> Any:
    return (
        parse_config(
            {
                "endpoints": [{"name": "chat-a", "url": "http://10.0.0.5:8000"}],
                "routes": [
                    {
                        "name": "chat",
                        "backend": {
                            "kind": "kubernetes",
                            "resource": "httproute",
                            "name": "chat",
                            "kubeconfig": str(path),
                        },
                        "targets": {"chat-a": "qwen-a"},
                        "stable": "chat-a",
                    }
                ],
            }
        )
        .routes[0]
        .backend
    )


@pytest.mark.parametrize("through_proxy", [False, True])
async def test_tls_server_name_against_a_certificate_for_another_name(tmp_path: Path, through_proxy: bool):
    import trustme

    ca = trustme.CA()
    server_cert = ca.issue_cert("kubernetes.default.svc")  # not 127.0.0.1
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    fake = FakeApiServer({HTTPROUTE: httproute()})
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem.bytes())
    (tmp_path / "token").write_text(TOKEN)
    with serve(handler_for(fake), tls=context) as port, serve(Proxy) as proxy:
        Proxy.seen = []

        def config(extra: str) -> Path:
            path = tmp_path / "kubeconfig"
            path.write_text(
                "current-context: c\n"
                "contexts: [{name: c, context: {cluster: c, user: u, namespace: serving}}]\n"
                f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}',"
                f" certificate-authority: ca.pem{extra}}}}}]\n"
                "users: [{name: u, user: {tokenFile: token}}]\n"
            )
            return path

        via = f", proxy-url: 'http://127.0.0.1:{proxy}'" if through_proxy else ""
        backend = route_for("chat", httproute_backend(config(via)), {"chat-a": "qwen-a"}, "chat-a")
        with pytest.raises(ControlError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await backend.read()
        await backend.close()
        named = config(f", tls-server-name: kubernetes.default.svc{via}")
        backend = route_for("chat", httproute_backend(named), {"chat-a": "qwen-a"}, "chat-a")
        assert (await backend.read()).targets[0].weight == 90
        await backend.close()
    assert bool(Proxy.seen) is through_proxy
    assert all(line == f"CONNECT 127.0.0.1:{port}" for line in Proxy.seen)


def test_an_unsupported_proxy_is_named_without_its_password(tmp_path: Path):
    path = tmp_path / "kubeconfig"
    path.write_text(
        "current-context: c\n"
        "contexts: [{name: c, context: {cluster: c}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://10.0.0.1', proxy-url: 'socks5://ops:hunter2@10.0.0.9:1080'}}]\n"
    )
    with pytest.raises(ControlError) as caught:
        load_kubeconfig(path)
    assert "proxy-url: socks5 scheme; only http:// and https:// proxies work" in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_httproute_unset_weights_count_as_one(tmp_path: Path, api: FakeApiServer, store: Store):
    obj = httproute()
    for ref in obj["spec"]["rules"][0]["backendRefs"]:
        del ref["weight"]
    api.objects[HTTPROUTE] = obj
    actions = actions_for(tmp_path, api, store)
    route = actions.routes["chat"]
    assert [(t.endpoint, t.weight) for t in (await actions.read(route)).targets] == [
        ("chat-a", 1),
        ("chat-b", 1),
    ]
    plan = await actions.plan(Action.ROLLBACK, route)
    a, b = obj["spec"]["rules"][0]["backendRefs"]
    assert json.loads(plan.requests[2]) == [
        {"op": "test", "path": "/spec/rules/0/backendRefs/0", "value": a},  # no weight to test: the whole ref
        {"op": "add", "path": "/spec/rules/0/backendRefs/0/weight", "value": 100},
        {"op": "test", "path": "/spec/rules/0/backendRefs/1", "value": b},
        {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0},
    ]
    assert (await actions.execute(plan)).ok
    assert [r["weight"] for r in api.objects[HTTPROUTE]["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    await actions.close()
