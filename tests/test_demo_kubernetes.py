"""The demo's Kubernetes route plans with the real Kubernetes adapter: its plan shows the PATCH a real
HTTPRoute would be sent, byte for byte, never HAProxy's lines."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from console.actions import Action, Actions, Route, build_routes
from console.config import parse_config
from console.control.demo import DemoBackend, httproute
from console.demo import DemoFleet
from console.store import Store
from tests.apps import demo_app, settle
from tests.test_control_haproxy import select
from tests.test_control_kubernetes import ALICE, FakeApiServer, handler_for, kubeconfig
from widgets.confirm import ConfirmScreen

CODER = "/apis/gateway.networking.k8s.io/v1/namespaces/demo/httproutes/coder"


def demo_coder() -> Route:
    state = next(r for r in DemoFleet(seed=7, start=0).routes() if r.name == "coder")
    return Route("coder", state.stable, tuple(t.endpoint for t in state.targets), DemoBackend(state))


async def test_demo_plan_is_what_the_real_adapter_sends_to_a_real_api_server(tmp_path: Path):
    demo = demo_coder()
    state = await demo.backend.read()
    served = httproute(state)
    served["metadata"]["resourceVersion"] = "1"
    api = FakeApiServer({CODER: served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(api))
    api.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = parse_config(
        {
            "endpoints": [
                {"name": "coder", "url": "http://10.0.0.5:8000"},
                {"name": "coder-fallback", "url": "http://10.0.0.6:8000"},
            ],
            "routes": [
                {
                    "name": "coder",
                    "backend": {
                        "kind": "kubernetes",
                        "resource": "httproute",
                        "namespace": "demo",
                        "name": "coder",
                        "kubeconfig": "kubeconfig",
                    },
                    "targets": {"coder": "coder", "coder-fallback": "coder-fallback"},
                    "stable": "coder",
                    "protected": True,
                }
            ],
        },
        source_path=kubeconfig(tmp_path, api.port),
    )
    try:
        async with await Store.open(tmp_path / "fleet.sqlite") as store:
            real = Actions(build_routes(config), store, operator=ALICE)
            simulated = Actions({"coder": demo}, store, operator=ALICE)
            planned = await real.plan(Action.SHIFT_TOWARD, real.routes["coder"], "coder-fallback")
            shown = await simulated.plan(Action.SHIFT_TOWARD, demo, "coder-fallback")
            await real.close()
    finally:
        server.shutdown()
        server.server_close()
    assert planned.can_confirm, planned
    assert shown.requests == planned.requests
    assert shown.requests[0] == f"PATCH {CODER}?fieldManager=fleetdeck"
    # and the body is the one the API server accepted in its dry run
    (dry_run,) = [r for r in api.requests if r[0] == "PATCH"]
    assert dry_run[3].decode() == shown.requests[2]


async def test_the_demo_console_shows_patch_bodies_for_its_kubernetes_route(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await select(pilot, "coder-fallback")
        await pilot.press("right_square_bracket")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        requests = app.screen.plan.requests
        assert requests[:2] == (
            f"PATCH {CODER}?fieldManager=fleetdeck",
            "Content-Type: application/json-patch+json",
        )
        assert '"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":10' in requests[2]
        assert not any(line.startswith("set server") for line in requests)
        assert app.screen.plan.backend == "kubernetes httproute demo/coder (simulated, demo)"
        await pilot.press(*"coder", "enter")  # protected: the name is typed
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert app.last_outcome is not None and app.last_outcome.ok, app.last_outcome
    assert [(t.endpoint, t.weight) for t in app.last_outcome.state.targets] == [
        ("coder", 90),
        ("coder-fallback", 10),
    ]
