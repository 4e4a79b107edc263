"""HAProxy end to end: a real haproxy on loopback, real HTTP backends, traffic measured through it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from console.app import FleetdeckApp
from console.config import parse_config
from console.control import ControlError, ReadOnlyBackend
from console.control.haproxy import HaproxyBackend
from console.model import OutcomeKind, RouteState, RouteTarget
from console.runtime import Mode, Runtime
from console.store import AuditOutcome, Store
from tests.loopback import Haproxy, haproxy
from widgets.confirm import ConfirmScreen
from widgets.endpoint_pane import ROUTE_KEY, EndpointPane

TARGETS = {"chat-a": "a", "chat-b": "b"}


@pytest.fixture
def proxy(tmp_path: Path):
    with haproxy(tmp_path) as running:
        yield running


def backend(address: str, targets: dict[str, str] = TARGETS) -> HaproxyBackend:
    return HaproxyBackend("chat", address, "qwen_chat", targets, "chat-a")


def split(*weights: tuple[str, int, str]) -> RouteState:
    return RouteState("chat", "haproxy", "chat-a", tuple(RouteTarget(*w) for w in weights))


async def test_reads_weights_and_states_over_tcp_and_unix(proxy: Haproxy):
    for address in (proxy.admin, proxy.admin_unix):
        state = await backend(address).read()
        assert [(t.endpoint, t.weight, t.state) for t in state.targets] == [
            ("chat-a", 90, "ready"),
            ("chat-b", 10, "ready"),
        ]


async def test_apply_changes_the_real_split(proxy: Haproxy):
    b = backend(proxy.admin)
    before = await b.read()
    after = split(("chat-a", 50, "ready"), ("chat-b", 50, "ready"))
    assert b.lines(before, after) == ["set server qwen_chat/b weight 50", "set server qwen_chat/a weight 50"]
    await b.apply(before, after)
    assert await b.read() == after
    assert proxy.split(200) == {"chat-a": 100, "chat-b": 100}
    drained = split(("chat-a", 50, "ready"), ("chat-b", 50, "drain"))
    await b.apply(after, drained)
    assert await b.read() == drained
    assert proxy.split(200) == {"chat-a": 200}


async def test_operator_socket_is_detected_and_refused(proxy: Haproxy):
    b = backend(proxy.operator)
    before = await b.read()  # reading is allowed
    after = split(("chat-a", 50, "ready"), ("chat-b", 50, "ready"))
    check = await b.check(before, after)
    assert not check.writable
    assert "operator-level" in check.reason
    with pytest.raises(ReadOnlyBackend, match="Permission denied"):
        await b.apply(before, after)
    assert (await backend(proxy.admin).read()).targets == before.targets


async def test_errors_are_one_clear_line(proxy: Haproxy, tmp_path: Path):
    with pytest.raises(ControlError, match="no server 'zz' in backend 'qwen_chat'"):
        await backend(proxy.admin, {"chat-a": "a", "chat-b": "zz"}).read()
    wrong = HaproxyBackend("chat", proxy.admin, "nope", TARGETS, "chat-a")
    with pytest.raises(ControlError, match="Can't find backend"):
        await wrong.read()
    b = backend(proxy.admin)
    assert (await b.command("set server qwen_chat/a weight 300")).strip() == (
        "Absolute weight can only be between 0 and 256 inclusive."
    )
    with pytest.raises(ControlError, match="outside 0..256"):
        b.lines(await b.read(), split(("chat-a", 300, "ready"), ("chat-b", 10, "ready")))
    closed = backend(f"127.0.0.1:{proxy.frontend + 0}")
    closed.address = "127.0.0.1:1"
    with pytest.raises(ControlError, match=r"haproxy 127.0.0.1:1: cannot connect"):
        await closed.read()
    with pytest.raises(ControlError, match="cannot connect"):
        await backend(str(tmp_path / "missing.sock")).read()


async def test_half_failed_change_says_what_was_applied(proxy: Haproxy):
    b = backend(proxy.admin)
    before = await b.read()
    # the server exists when planned, then goes away (a reload with another config)
    b.targets["chat-b"] = "gone"
    with pytest.raises(ControlError) as failed:
        await b.apply(before, split(("chat-a", 70, "ready"), ("chat-b", 30, "ready")))
    message = str(failed.value)
    assert "'set server qwen_chat/gone weight 30' failed: No such server." in message
    assert "applied: nothing" in message
    assert "not sent: set server qwen_chat/a weight 70" in message


# --- the console, keys pressed, traffic measured --------------------------------------------------------


def live_app(
    proxy: Haproxy, tmp_path: Path, *, address: str | None = None, **console: object
) -> FleetdeckApp:
    config = parse_config(
        {
            "console": {"db": str(tmp_path / "fleet.sqlite"), **console},
            "endpoints": [
                {"name": "chat-a", "url": f"http://127.0.0.1:{proxy.frontend}"},
                {"name": "chat-b", "url": f"http://127.0.0.1:{proxy.frontend}"},
            ],
            "routes": [
                {
                    "name": "chat",
                    "backend": {
                        "kind": "haproxy",
                        "address": address or proxy.admin,
                        "haproxy_backend": "qwen_chat",
                    },
                    "targets": TARGETS,
                    "stable": "chat-a",
                    "step": 10,
                }
            ],
        },
        source_path=tmp_path / "fleetdeck.toml",
    )
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "fleet.sqlite")
    return FleetdeckApp(runtime, live=False)


async def settled(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def select(pilot, endpoint: str) -> None:
    """Put the Endpoints pane's cursor on an endpoint's row."""
    pane = pilot.app.query_one(EndpointPane)
    pane.table.move_cursor(row=pane._keys.index(endpoint))
    await pilot.pause()


async def press_action(pilot, *keys: str) -> ConfirmScreen:
    await pilot.press(*keys)
    await settled(pilot)
    assert isinstance(pilot.app.screen, ConfirmScreen)
    return pilot.app.screen


async def confirm(pilot, typed: str | None = None) -> None:
    if typed is None:
        await pilot.press("y")
    else:
        await pilot.press(*typed, "enter")
    await settled(pilot)
    assert not isinstance(pilot.app.screen, ConfirmScreen)


async def test_keys_shift_drain_undo_rollback_move_real_traffic(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")  # the Endpoints pane
        assert [e.weight for e in app.runtime.snapshot.endpoints] == [90, 10]

        await select(pilot, "chat-b")

        screen = await press_action(pilot, "right_square_bracket")  # toward chat-b
        assert screen.plan.rows() == [("chat-a", "90", "80", 90, 80), ("chat-b", "10", "20", 10, 20)]
        assert screen.plan.requests == (
            "set server qwen_chat/b weight 20",
            "set server qwen_chat/a weight 80",
        )
        await confirm(pilot)
        assert app.last_outcome is not None and app.last_outcome.ok, app.last_outcome
        assert proxy.split(200) == {"chat-a": 160, "chat-b": 40}
        assert [e.weight for e in app.runtime.snapshot.endpoints] == [80, 20]

        await press_action(pilot, "left_square_bracket")  # away from chat-b, back to the stable target
        await confirm(pilot)
        assert proxy.split(200) == {"chat-a": 180, "chat-b": 20}

        screen = await press_action(pilot, "D")  # drain chat-b: chat-a is left alone, so type the name
        assert screen.plan.needs_typing
        await pilot.press("y")  # y alone does nothing here
        await settled(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("backspace")
        await confirm(pilot, typed="chat")
        assert app.last_outcome.ok, app.last_outcome
        assert proxy.split(200) == {"chat-a": 200}

        await press_action(pilot, "U")  # undo the drain
        await confirm(pilot)
        assert app.last_outcome.ok, app.last_outcome
        assert proxy.split(200) == {"chat-a": 180, "chat-b": 20}

        await select(pilot, "chat-b")

        await press_action(pilot, "right_square_bracket")
        await confirm(pilot)
        screen = await press_action(pilot, "R")  # rollback always needs the name typed
        assert screen.plan.needs_typing
        assert screen.plan.rows() == [("chat-a", "80", "100", 80, 100), ("chat-b", "20", "0", 20, 0)]
        await confirm(pilot, typed="chat")
        assert app.last_outcome.ok, app.last_outcome
        assert proxy.split(200) == {"chat-a": 200}

        entries = await app.runtime.store.audit_entries(route="chat")
        assert [(e.action, e.outcome) for e in reversed(entries)] == [
            ("shift-toward chat-b", AuditOutcome.OK),
            ("shift-away chat-b", AuditOutcome.OK),
            ("drain chat-b", AuditOutcome.OK),
            ("undo #3", AuditOutcome.OK),
            ("shift-toward chat-b", AuditOutcome.OK),
            ("rollback", AuditOutcome.OK),
        ]
        assert entries[0].before == {
            "targets": {
                "chat-a": {"state": "ready", "weight": 80},
                "chat-b": {"state": "ready", "weight": 20},
            }
        }
        assert entries[0].backend == f"haproxy {proxy.admin} backend qwen_chat"


async def test_escape_cancels_and_nothing_is_sent(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select(pilot, "chat-b")
        await press_action(pilot, "right_square_bracket")
        await pilot.press("escape")
        await settled(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert await app.runtime.store.audit_entries() == []
    assert proxy.split(100) == {"chat-a": 90, "chat-b": 10}


def toasts(app: FleetdeckApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_backend_gone_when_planning_is_said_under_its_title(proxy: Haproxy, tmp_path: Path):
    """The planner's error reaches the screen through the one error path: its line, titled Cannot plan."""
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select(pilot, "chat-b")
        with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
            closed.bind(("127.0.0.1", 0))
            gone = f"127.0.0.1:{closed.getsockname()[1]}"
        app.runtime.actions.routes["chat"].backend.address = gone  # type: ignore[attr-defined]
        await pilot.press("right_square_bracket")
        await settled(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        [note] = [n for n in app._notifications if n.title == "Cannot plan"]
        assert note.severity == "error" and gone in str(note.message)
        assert await app.runtime.store.audit_entries() == []


async def test_operator_socket_is_marked_on_the_route_row_and_refused(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path, address=proxy.operator)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        [route] = app.runtime.snapshot.routes
        assert route.read_only == "read-only socket (operator)"
        pane = app.query_one(EndpointPane)
        row = dict(pane.rows(app.runtime.snapshot))[ROUTE_KEY + "chat"]
        assert "read-only socket (operator)" in " ".join(str(cell) for cell in row)
        await select(pilot, "chat-b")
        await pilot.press("right_square_bracket")
        await settled(pilot)
        assert not isinstance(app.screen, ConfirmScreen)  # refused before any plan, with the reason
        where = f"haproxy {proxy.operator} backend qwen_chat"
        assert toasts(app) == [f"chat cannot be changed: read-only socket (operator) at {where}"]
        assert await app.runtime.store.audit_entries() == []
    assert proxy.split(100) == {"chat-a": 90, "chat-b": 10}


async def test_admin_socket_is_not_marked(proxy: Haproxy):
    assert (await backend(proxy.admin).read()).read_only == ""
    assert (await backend(proxy.admin_unix).read()).read_only == ""
    assert (await backend(proxy.operator).read()).read_only == "read-only socket (operator)"


async def test_read_only_action_keys_say_why(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select(pilot, "chat-b")
        for key in ("right_square_bracket", "left_square_bracket", "R", "D", "U"):
            await pilot.press(key)
            await settled(pilot)
            assert not isinstance(app.screen, ConfirmScreen), key
            assert toasts(app)[-1] == f"read-only: console.read_only in {tmp_path / 'fleetdeck.toml'}"
        assert not [c for c in app.get_system_commands(app.screen) if c.title.startswith("Route:")]
        assert await app.runtime.store.audit_entries() == []
    assert proxy.split(100) == {"chat-a": 90, "chat-b": 10}


async def test_started_read_only_says_so(proxy: Haproxy, tmp_path: Path):
    config = live_app(proxy, tmp_path).runtime.config
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "f.sqlite", read_only=True)
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select(pilot, "chat-b")
        await pilot.press("D")
        await settled(pilot)
        assert toasts(app)[-1] == "read-only: started with --read-only"


async def test_action_keys_only_act_on_the_endpoints_pane(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        assert app.check_action("act", ("rollback",)) is False  # GPUs pane is active
        await pilot.press("right_square_bracket")
        await settled(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("2")
        assert app.check_action("act", ("rollback",)) is True


async def test_non_operator_sees_the_plan_but_cannot_confirm(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path, operators=["somebody-else"])
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select(pilot, "chat-b")
        screen = await press_action(pilot, "right_square_bracket")
        assert "is not in console.operators" in screen.plan.blocked
        assert screen.plan.rows()[1] == ("chat-b", "10", "20", 10, 20)
        await pilot.press("y")
        await settled(pilot)
        assert isinstance(app.screen, ConfirmScreen)
    assert proxy.split(100) == {"chat-a": 90, "chat-b": 10}


async def test_a_change_underneath_makes_the_plan_stale(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select(pilot, "chat-b")
        await press_action(pilot, "right_square_bracket")
        # someone else moves the split while the plan is on screen
        assert (await backend(proxy.admin).command("set server qwen_chat/b weight 50")).strip() == ""
        await pilot.press("y")
        await settled(pilot)
        outcome = app.last_outcome
        assert outcome is not None and outcome.kind is OutcomeKind.STALE
        assert "chat-a 90, chat-b 50" in outcome.message
        entries = await app.runtime.store.audit_entries()
        assert entries[0].outcome is AuditOutcome.REFUSED
        assert "changed since the plan was shown" in entries[0].detail
        assert [e.weight for e in app.runtime.snapshot.endpoints] == [64, 36]  # the new state is shown
        # and planned again from it, for the person to confirm or not
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.rows() == [("chat-a", "90", "54", 64, 54), ("chat-b", "50", "46", 36, 46)]
        await pilot.press("escape")
        await settled(pilot)
    assert await backend(proxy.admin).read() == split(("chat-a", 90, "ready"), ("chat-b", 50, "ready"))


async def test_store_records_the_failed_attempt(proxy: Haproxy, tmp_path: Path):
    """A backend error is journalled as failed, with the state read back."""
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select(pilot, "chat-b")
        screen = await press_action(pilot, "right_square_bracket")
        held = app.runtime.actions.routes[screen.plan.route].backend
        held.targets["chat-b"] = "gone"  # type: ignore[attr-defined]
        held.read = backend(proxy.admin).read  # type: ignore[attr-defined]
        await confirm(pilot)
        outcome = app.last_outcome
        assert outcome is not None and outcome.kind is OutcomeKind.FAILED
        assert "No such server." in outcome.message and "it is now chat-a 90, chat-b 10" in outcome.message
        store: Store = app.runtime.store
        assert (await store.audit_entries())[0].outcome is AuditOutcome.FAILED


async def test_every_action_is_in_the_command_palette(proxy: Haproxy, tmp_path: Path):
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {
            "Route: Rollback",
            "Route: Shift toward",
            "Route: Shift away",
            "Route: Drain",
            "Route: Undo",
        } <= titles
        await pilot.press("2")
        await select(pilot, "chat-b")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"shift toward")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settled(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.title == "Shift chat toward chat-b"
