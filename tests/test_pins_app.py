"""The Pins and Signals panes in the console: details, a bump end to end, acknowledging, read-only."""

from __future__ import annotations

from rich.console import Console

from console.demo.fleet import QWEN3_8B_NEW_REV, QWEN3_8B_REV
from console.model import SignalState
from console.pins import load_pins
from console.store import AuditOutcome
from tests.apps import demo_app, settle
from widgets.pin_bump import PinBumpScreen
from widgets.pin_detail import PinDetailScreen
from widgets.signal_detail import SignalDetailScreen, signal_body


def rendered(renderable) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def select(pilot, pane: str, key: str) -> None:
    app = pilot.app
    table = app.query_one(f"#pane-{pane}").table
    keys = [row.value for row in table.rows]
    table.move_cursor(row=keys.index(key))
    await pilot.pause()


async def test_bump_from_the_pane_end_to_end(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        runtime = app.runtime
        assert [d.endpoint for d in runtime.snapshot.drifts] == ["chat-b"]
        await pilot.press("3")
        await select(pilot, "pins", "qwen3-8b")
        await pilot.press("b")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PinBumpScreen)
        assert screen.bump.after == QWEN3_8B_NEW_REV and screen.bump.before == QWEN3_8B_REV
        assert load_pins(runtime.pins_path)[0].revision == QWEN3_8B_REV  # nothing written before y
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        (pin, *_) = load_pins(runtime.pins_path)
        assert pin.revision == QWEN3_8B_NEW_REV and pin.previous[0].revision == QWEN3_8B_REV
        (entry,) = await runtime.store.audit_entries()
        assert entry.outcome is AuditOutcome.OK and entry.route == "pin:qwen3-8b"
        # now chat-a is the one that serves something else, and the newer revision is no longer news
        assert [(d.endpoint, d.field) for d in runtime.snapshot.drifts] == [("chat-a", "revision")]
        assert not [u for u in runtime.snapshot.upstream if u.pin == "qwen3-8b" and u.kind == "revision"]


async def test_bump_cancelled_writes_nothing(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        before = app.runtime.pins_path.read_text()
        await pilot.press("3")
        await select(pilot, "pins", "qwen3-8b")
        await pilot.press("b")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.runtime.pins_path.read_text() == before
        assert await app.runtime.store.audit_entries() == []


async def test_nothing_to_bump_and_read_only(frozen_clock):
    app = demo_app(frozen_clock, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await select(pilot, "pins", "qwen3-8b")
        await pilot.press("b")
        await pilot.pause()
        assert not isinstance(app.screen, PinBumpScreen)
        # the key says why it does nothing
        [note] = [n for n in app._notifications if n.title == "Pin bumps are off"]
        assert note.message == "read-only: started with --read-only"


async def test_pin_details_list_every_drift_and_upstream(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await select(pilot, "pins", "qwen3-8b")
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PinDetailScreen)
        assert [u.kind for u in screen.upstream] == ["revision", "engine"]
        assert [d.message for d in screen.drifts] == ["serves revision 3f2a91c, pinned 8b1e0d4"]


async def test_signal_details_and_acknowledge(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await select(pilot, "signals", "github:vllm-project/vllm\x00release:v0.33.0")
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SignalDetailScreen)
        assert screen.signal.reason == (
            "newer engine release v0.33.0 (notes mention breaking change, removal) for pin qwen3-8b"
        )
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        (signal,) = [s for s in app.runtime.snapshot.signals if s.id == "release:v0.33.0"]
        assert signal.state is SignalState.ACKNOWLEDGED


def test_signal_body_renders_markdown_and_never_markup():
    from console.model import Signal

    signal = Signal(
        source="feed:x",
        id="news:1",
        kind="news",
        title="[bold red]not markup[/] title",
        url="https://example.org/a?b=[c]",
        body="## Notes\n\n- item one\n- `code` [red]stays[/red] [link=https://evil]x[/link]",
    )
    text = rendered(signal_body(signal))
    assert "[bold red]not markup[/] title" in text
    assert "https://example.org/a?b=[c]" in text
    assert "[red]stays[/red]" in text and "[link=https://evil]x[/link]" in text
    assert "Notes" in text and "## Notes" not in text  # the heading is rendered, not shown raw
    assert "• item one" in text


async def test_demo_signals_come_from_the_real_collectors(frozen_clock):
    """The demo polls its simulated upstream on loopback; a release published later arrives by itself."""
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        runtime = app.runtime
        assert runtime.sources.upstream is not None and runtime.poller is not None
        assert all(state.ok for state in runtime.poller.states())
        assert not any(s.source == "github:ggml-org/llama.cpp" for s in runtime.snapshot.signals)
        frozen_clock.advance(40)  # past the poll interval and the moment llama.cpp b6601 is published
        await runtime.scheduler.run_once("signals")
        await pilot.pause()
        (release,) = [s for s in runtime.snapshot.signals if s.source == "github:ggml-org/llama.cpp"]
        assert release.state is SignalState.NEW
        assert release.reason == "newer engine release b6601 for pin qwen2.5-coder-7b"
        assert len(runtime.poller.states()) == 7
