"""The Textual App: composes the panes, wires the runtime to them and the keys to actions."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.driver import Driver
from textual.events import Resize
from textual.filter import LineFilter
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from console.config import zero_config_notice
from console.errors import FleetdeckError
from console.guard import Breach
from console.inert import inert
from console.model import Action, Outcome, OutcomeKind, Plan, Signal, SignalState
from console.pins import PinsError, bump_candidate, plan_bump
from console.runtime import Runtime
from console.store import StoreError
from widgets import textual_private
from widgets.colourless import Colourless
from widgets.confirm import ConfirmScreen
from widgets.endpoint_detail import EndpointDetailScreen
from widgets.endpoint_pane import ROUTE_KEY, EndpointPane
from widgets.gpu_pane import GpuPane
from widgets.gpu_processes import GpuProcessScreen
from widgets.header import FleetHeader, PaneTabs
from widgets.help import HelpScreen
from widgets.keyline import KeyLine
from widgets.pane import Pane
from widgets.pin_bump import PinBumpScreen
from widgets.pin_detail import PinDetailScreen
from widgets.pin_pane import PinPane
from widgets.signal_detail import SignalDetailScreen
from widgets.signal_pane import SignalPane

# below either size the panes are shown one at a time, with a tab line naming them all
NARROW_WIDTH = 120
SHORT_HEIGHT = 30
NO_COLOUR = Colourless()


@dataclass(frozen=True, slots=True)
class RouteKey:
    """A key that moves traffic; it acts on the route of the target selected in the Endpoints pane."""

    key: str
    action: Action
    title: str
    name: str  # the binding's id, `route.<name>`, for the keymap
    tooltip: str


ROUTE_KEYS = (
    RouteKey(
        "R",
        Action.ROLLBACK,
        "Rollback",
        "rollback",
        "Endpoints: roll the selected route back to its stable target",
    ),
    RouteKey(
        "right_square_bracket",
        Action.SHIFT_TOWARD,
        "Shift toward",
        "shift_toward",
        "Endpoints: shift one step of traffic toward the selected target",
    ),
    RouteKey(
        "left_square_bracket",
        Action.SHIFT_AWAY,
        "Shift away",
        "shift_away",
        "Endpoints: shift one step of traffic away from the selected target",
    ),
    RouteKey("D", Action.DRAIN, "Drain", "drain", "Endpoints: drain the selected target"),
    RouteKey("U", Action.UNDO, "Undo", "undo", "Endpoints: undo the last action on the selected route"),
)


class GuardBreached(Message):
    def __init__(self, breach: Breach, outcome: Outcome | None) -> None:
        super().__init__()
        self.breach = breach
        self.outcome = outcome


class PaneChanged(Message):
    def __init__(self, pane: str) -> None:
        super().__init__()
        self.pane = pane


class ConsoleScreen(Screen[None]):
    """The main screen. Textual repaints a whole screen when its focus moves, every cell of it; the
    widgets that look different with focus repaint themselves, so a Tab costs a few lines, not a screen."""

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)


class FleetdeckApp(App[None]):
    TITLE = "fleetdeck"
    CSS = """
    Screen { layout: vertical; }
    #panes {
        layout: grid;
        grid-size: 2 2;
        grid-gutter: 0;
        height: 1fr;
    }
    #panes.-single { layout: vertical; }
    #panes.-single > Pane { display: none; }
    #panes.-single > Pane.-shown { display: block; }
    Screen.-narrow PaneTabs { display: block; }
    /* without colour the selected row would look like any other */
    DataTable:nocolor > .datatable--cursor { text-style: underline; }
    DataTable:nocolor:focus > .datatable--cursor { text-style: reverse; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "tab", "next_pane", "Next pane", priority=True, id="pane.next", tooltip="move to the next pane"
        ),
        Binding(
            "shift+tab",
            "previous_pane",
            "Previous pane",
            priority=True,
            show=False,
            id="pane.previous",
            tooltip="move to the previous pane",
        ),
        *(
            Binding(
                str(n + 1),
                f"zoom({n})",
                title,
                show=False,
                id=f"pane.zoom{n + 1}",
                tooltip=f"zoom {title} to the full screen; again to go back",
            )
            for n, title in enumerate(("GPUs", "Endpoints", "Pins", "Signals"))
        ),
        Binding(
            "escape",
            "unzoom",
            "Back",
            show=False,
            id="pane.unzoom",
            tooltip="leave the zoom; dismiss notifications",
        ),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="this help: every key"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="quit fleetdeck"),
        *(
            Binding(
                k.key,
                f"act('{k.action.value}')",
                k.title,
                show=False,
                id=f"route.{k.name}",
                tooltip=k.tooltip,
            )
            for k in ROUTE_KEYS
        ),
    ]
    # keys handled by the widgets themselves, listed so the help is complete
    TABLE_KEYS: ClassVar[list[tuple[str, str]]] = [
        ("↑ ↓ PgUp PgDn", "move in the pane's table"),
        ("ctrl+home ctrl+end", "to the table's first / last row"),
        (
            "← → Home End",
            "the pane's other columns, one at a time (the name stays); Home / End: first / last",
        ),
    ]

    def get_default_screen(self) -> Screen[None]:
        return ConsoleScreen(id="_default")

    def __init__(self, runtime: Runtime, *, live: bool = True, warnings: Sequence[str] = ()) -> None:
        super().__init__()
        textual_private.check()  # private Textual API only on the version it was read against
        textual_private.install_writers()  # leaner screen updates: the same screen in fewer bytes
        self.runtime = runtime
        self.live = live
        self.config_warnings = tuple(warnings)
        self.active = 0
        self.zoomed: int | None = None
        self.gpu_pane = GpuPane()
        self.endpoint_pane = EndpointPane()
        self.pin_pane = PinPane()
        self.signal_pane = SignalPane(runtime.clock)
        self.panes: list[Pane] = [self.gpu_pane, self.endpoint_pane, self.pin_pane, self.signal_pane]
        runtime.listeners.append(self._runtime_changed)
        runtime.breach_listeners.append(
            lambda breach, outcome: self.post_message(GuardBreached(breach, outcome))
        )
        self.last_outcome: Outcome | None = None
        self.keymap: dict[str, str] = {}  # binding id -> keys, as remapped in `[keys]`
        self.last_muted: str | None = None  # the source u would unmute

    def say_error(self, exc: FleetdeckError) -> None:
        """The one way an error reaches the screen: its line, under its title."""
        self.notify(str(exc), title=exc.title, severity="error", timeout=10, markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # a worker's failure that is a person's to know (a route that cannot be read to plan) is said
        if event.state is WorkerState.ERROR and isinstance(event.worker.error, FleetdeckError):
            self.say_error(event.worker.error)

    def get_driver_class(self) -> type[Driver]:
        return textual_private.driver_class(super().get_driver_class())

    def get_line_filters(self) -> Sequence[LineFilter]:
        if self.no_color:
            return [NO_COLOUR]  # instead of Textual's, which paints in greys
        return super().get_line_filters()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every toast is plain inert text: messages quote names, errors and answers from outside."""
        if not title and severity != "information":
            title = severity.capitalize()  # else a toast's severity is only the colour of its edge
        message, title = inert(message, multiline=True), inert(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    @property
    def modes(self) -> tuple[str, ...]:
        modes = [self.runtime.mode.value]
        if self.runtime.read_only:
            modes.append("READ-ONLY")
        return tuple(modes)

    def compose(self) -> ComposeResult:
        yield FleetHeader()
        yield PaneTabs()
        with Container(id="panes"):
            yield from self.panes
        yield KeyLine()

    def on_mount(self) -> None:
        if self.runtime.config.console.theme:
            self.theme = self.runtime.config.console.theme
        if self.runtime.config.keys:
            self.keymap = dict(self.runtime.config.keys)
            self.set_keymap(self.keymap)
        self.query_one(FleetHeader).show(self.runtime.snapshot, self.modes)
        self._layout(self.size.width, self.size.height)
        self.panes[0].focus_content()
        if self.runtime.zero_config:
            self.notify("\n".join(zero_config_notice()), title="No config file", timeout=30, markup=False)
        if self.config_warnings:
            lines = "\n".join(self.config_warnings)
            self.notify(lines, title="Config warnings", severity="warning", timeout=30, markup=False)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGHUP, signal.SIGTERM):
            # not possible off the main thread (tests) or on a non-Unix loop
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.exit)
        self._run_runtime()

    @work(exclusive=True, group="runtime", exit_on_error=False)
    async def _run_runtime(self) -> None:
        try:
            await self.runtime.start(live=self.live)
        except StoreError as exc:
            self.exit(return_code=2, message=f"fleetdeck: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 -- said on every pane, never a console loading for ever
            self.runtime.fail_start(exc)
            return
        reconciled = self.runtime.reconciled
        if len(reconciled) == 1:
            self.notify(
                reconciled[0], title="Audit journal reconciled", severity="warning", timeout=30, markup=False
            )
        elif reconciled:
            # one note however many a crash left: the lines themselves are in `fleetdeck audit`
            self.notify(
                f"{len(reconciled)} journal entries settled or found in progress at start; first:"
                f" {reconciled[0]}. `fleetdeck audit` lists them all.",
                title="Audit journal reconciled",
                severity="warning",
                timeout=30,
                markup=False,
            )
        if self.runtime.journal_note:
            self.notify(self.runtime.journal_note, title="The demo's journal is temporary", timeout=15,
                        markup=False)  # fmt: skip
        for route, error in self.runtime.route_errors.items():
            self.notify(
                error, title=f"Route {route} cannot be read", severity="error", timeout=30, markup=False
            )
        self.call_after_refresh(self._settle_memory)

    def _settle_memory(self) -> None:
        """What start-up made lives as long as the console: set it aside from the cyclic garbage
        collector, whose full passes over it stalled the screen for 100 ms and more now and then."""
        gc.collect()
        gc.freeze()

    async def on_unmount(self) -> None:
        await self.runtime.close()

    # --- runtime -> panes ---

    def _runtime_changed(self, pane: str) -> None:
        self.post_message(PaneChanged(pane))

    @on(PaneChanged)
    def _pane_changed(self, message: PaneChanged) -> None:
        snapshot = self.runtime.snapshot
        for pane in self.panes:
            if pane.pane_id == message.pane or {message.pane, pane.pane_id} == {"signals", "pins"}:
                pane.show(snapshot)  # upstream state joins the two
            elif message.pane == "pins" and pane.pane_id == "endpoints":
                pane.show(snapshot)  # drift markers
        screen = self.screen
        if isinstance(screen, EndpointDetailScreen) or (
            message.pane == "gpus" and isinstance(screen, GpuProcessScreen)
        ):
            screen.show(snapshot)
        for header in self.query(FleetHeader):  # none while the app is shutting down
            header.show(snapshot, self.modes)

    @on(GpuPane.ProcessesRequested)
    def _gpu_processes(self, message: GpuPane.ProcessesRequested) -> None:
        if not isinstance(self.screen, GpuProcessScreen):
            screen = GpuProcessScreen(message.key, self.runtime.snapshot)
            self.push_screen(screen, callback=lambda _: self._sync_panes())

    # --- layout ---

    def on_resize(self, event: Resize) -> None:
        self._layout(event.size.width, event.size.height)

    @property
    def narrow(self) -> bool:
        return self.size.width < NARROW_WIDTH or self.size.height < SHORT_HEIGHT

    def _layout(self, width: int, height: int) -> None:
        narrow = width < NARROW_WIDTH or height < SHORT_HEIGHT
        self.screen.set_class(narrow, "-narrow")
        single = narrow or self.zoomed is not None
        shown = self.zoomed if self.zoomed is not None else self.active
        self.query_one("#panes").set_class(single, "-single")
        for index, pane in enumerate(self.panes):
            if single:  # in the grid every pane shows: moving the class would restyle them all
                pane.set_class(index == shown, "-shown")
            pane.set_active(index == self.active)
        if narrow:  # the tab line shows only in the narrow layout; its update would lay out the screen
            self.query_one(PaneTabs).show([pane.title for pane in self.panes], shown)
        self.call_after_refresh(self._sync_panes)

    def _sync_panes(self) -> None:
        for pane in self.panes:
            pane.sync()

    def _activate(self, index: int) -> None:
        self.active = index % len(self.panes)
        if self.zoomed is not None:
            self.zoomed = self.active
        self._layout(self.size.width, self.size.height)
        self._focus_pane(self.active)

    def _focus_pane(self, index: int) -> None:
        """Focus the pane and show its keys in the same frame as its border."""
        screen = self.screen
        if not isinstance(screen, ConsoleScreen):
            self.panes[index].focus_content()
            return
        screen.set_focus(self.panes[index].focus_target)
        for line in screen.query(KeyLine):
            line.follow(screen)

    # --- actions ---

    def action_next_pane(self) -> None:
        self._activate(self.active + 1)

    def action_previous_pane(self) -> None:
        self._activate(self.active - 1)

    def action_zoom(self, index: int) -> None:
        if self.zoomed == index or (self.narrow and self.zoomed is None and self.active == index):
            self.zoomed = None
        else:
            self.zoomed = index
        self.active = index
        self._layout(self.size.width, self.size.height)
        self._focus_pane(index)

    def action_unzoom(self) -> None:
        self.clear_notifications()  # a toast is otherwise dismissed only by a click or its timeout
        if self.zoomed is not None:
            self.zoomed = None
            self._layout(self.size.width, self.size.height)

    def help_sections(self) -> list[tuple[str, Iterable[tuple[str, str]]]]:
        """Every binding, with the key it has now (after any remapping in `[keys]`)."""

        def rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
            result = []
            for binding in bindings:
                assert isinstance(binding, Binding)
                key = self.keymap.get(binding.id or "", binding.key) if binding.id else binding.key
                display = ", ".join(
                    self.get_key_display(replace(binding, key=k.strip())) for k in key.split(",")
                )
                result.append((display, binding.tooltip or binding.description))
            return result

        palette = (
            self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "")),
            "command palette: every action",
        )
        return [
            ("Everywhere", [*rows(self.BINDINGS), palette, *self.TABLE_KEYS]),
            ("GPUs pane", rows(GpuPane.BINDINGS)),
            ("GPU view", rows(GpuProcessScreen.BINDINGS)),
            ("Endpoints pane", rows(EndpointPane.BINDINGS)),
            ("Pins pane", rows(PinPane.BINDINGS)),
            ("Signals pane", rows(SignalPane.BINDINGS)),
        ]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()), callback=lambda _: self._sync_panes())

    @on(SignalPane.StateRequested)
    def _signal_state(self, message: SignalPane.StateRequested) -> None:
        # u takes back a mute only right after it
        muted = self.last_muted if message.action == "undo" else None
        self.last_muted = message.source if message.action == "mute" else None
        if message.action == "open":
            signal = next(
                (
                    s
                    for s in self.runtime.snapshot.signals
                    if (s.source, s.id) == (message.source, message.signal_id)
                ),
                None,
            )
            if signal is not None:
                sources = self.runtime.snapshot.signal_sources
                screen = SignalDetailScreen(signal, sources, self.runtime.clock())
                self.push_screen(screen, callback=self._signal_detail_closed(signal))
            return
        self._change_signal(message.action, message.source, message.signal_id, muted)

    @work(group="signals", exit_on_error=False)
    async def _change_signal(self, action: str, source: str, signal_id: str, muted: str | None) -> None:
        """A person's change to a signal, off the message loop: written, then shown once its refresh ran."""
        if action == "acknowledge":
            await self.runtime.set_signal_state(source, signal_id, SignalState.ACKNOWLEDGED)
        elif action == "mute":
            await self.runtime.mute_source(source)
            undo = self.key_of("signal.undo", "u")
            self.notify(f"muted {source}: {undo} to unmute", timeout=8, markup=False)
        elif action == "undo":
            await self._undo_signal(source, signal_id, muted)
        elif action == "unacknowledge":
            await self._unacknowledge(source, signal_id)

    def key_of(self, binding_id: str, default: str) -> str:
        """How the key bound to `binding_id` reads now, after any remapping in `[keys]`."""
        key = self.keymap.get(binding_id, default).split(",")[0].strip()
        return self.get_key_display(Binding(key, ""))

    async def _undo_signal(self, source: str, signal_id: str, muted: str | None) -> None:
        """u: unmute the source muted just before, else make the selected acknowledged signal new again."""
        if muted is not None:
            await self.runtime.unmute_source(muted)
            self.notify(f"unmuted {muted}", timeout=4, markup=False)
            return
        if await self._unacknowledge(source, signal_id, quiet=True):
            return
        if self.runtime.muted:
            palette = self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, ""))
            self.notify(
                f"{len(self.runtime.muted)} muted: unmute from the command palette ({palette}, Unmute …)"
                " or with `fleetdeck signals unmute SOURCE`",
                title="Nothing to undo here",
                timeout=8,
                markup=False,
            )
        else:
            self.notify("nothing to undo: no acknowledged signal selected, no source muted", timeout=4)

    async def _unacknowledge(self, source: str, signal_id: str, quiet: bool = False) -> bool:
        """Make an acknowledged signal new again; whether there was one to take back."""
        signal = next(
            (s for s in self.runtime.snapshot.signals if (s.source, s.id) == (source, signal_id)), None
        )
        if signal is None or signal.state is not SignalState.ACKNOWLEDGED:
            if not quiet:
                self.notify("the selected signal is not acknowledged", timeout=4)
            return False
        await self.runtime.set_signal_state(source, signal_id, SignalState.NEW)
        self.notify(f"new again: {signal.title}", timeout=4, markup=False)
        return True

    def _signal_detail_closed(self, signal: Signal) -> Callable[[str | None], None]:
        def closed(result: str | None) -> None:
            if result == "acknowledge":
                self._change_signal("acknowledge", signal.source, signal.id, None)
            self._sync_panes()

        return closed

    @on(PinPane.Requested)
    def _pin_requested(self, message: PinPane.Requested) -> None:
        if message.action == "open":
            self._open_pin(message.pin)
        elif message.action == "bump":
            self._plan_bump(message.pin)

    def _open_pin(self, name: str) -> None:
        snapshot = self.runtime.snapshot
        pin = next((p for p in snapshot.pins if p.name == name), None)
        if pin is None:
            return
        drifts = [d for d in snapshot.drifts if d.pin == name]
        upstream = [u for u in snapshot.upstream if u.pin == name]

        def closed(result: str | None) -> None:
            self._sync_panes()
            if result == "bump":
                self._plan_bump(name)

        self.push_screen(PinDetailScreen(pin, drifts, upstream, self.runtime.read_only), callback=closed)

    def _plan_bump(self, name: str) -> None:
        """Show the plan of moving the pin to what upstream names; nothing is written before y."""
        if self.runtime.read_only:
            self.notify(self.runtime.read_only_reason, title="Pin bumps are off", severity="warning",
                        markup=False)  # fmt: skip
            return
        snapshot = self.runtime.snapshot
        candidate = bump_candidate(snapshot.upstream, name)
        if candidate is None or candidate.bump_field is None or candidate.bump_to is None:
            self.notify(f"Nothing upstream to bump {name} to", severity="warning", timeout=4)
            return
        try:
            bump = plan_bump(snapshot.pins, name, candidate.bump_to, candidate.bump_field, candidate.message)
        except PinsError as exc:
            self.say_error(exc)
            return

        async def confirmed(yes: bool | None) -> None:
            self._sync_panes()
            if yes:
                try:
                    await self.runtime.bump_pin(bump)
                except PinsError as exc:
                    self.say_error(exc)
                else:
                    self.notify(f"Bumped {bump.message}", title="Pin bumped", timeout=6, markup=False)

        self.push_screen(PinBumpScreen(bump, self.runtime.pins_label), callback=confirmed)

    # --- route actions: plan -> confirm -> execute ---

    @property
    def shown_pane(self) -> Pane:
        return self.panes[self.zoomed if self.zoomed is not None else self.active]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act":
            # only live on the Endpoints pane; when read-only the key still says why nothing happens
            return self.shown_pane.pane_id == "endpoints"
        return True

    def action_act(self, action: str) -> None:
        actions = self.runtime.actions
        if self.runtime.read_only:
            self.notify(self.runtime.read_only_reason, severity="warning", timeout=6, markup=False)
            return
        if actions is None:
            return
        endpoint = self.query_one(EndpointPane).selected_key
        if endpoint is not None and endpoint.startswith(ROUTE_KEY):  # the route's own row
            route, endpoint = actions.routes.get(endpoint.removeprefix(ROUTE_KEY)), None
        else:
            route = actions.route_of(endpoint)
        if route is None:
            self.notify(
                f"{endpoint or 'nothing'} is not a target of any route", severity="warning", timeout=4
            )
            return
        if self._refuse_read_only_route(route.name):
            return
        self._plan(Action(action), route.name, endpoint)

    def _refuse_read_only_route(self, name: str) -> bool:
        """Refuse at once, saying why, an action on a route its backend will not let anyone change."""
        state = next((r for r in self.runtime.snapshot.routes if r.name == name), None)
        if state is None or not state.read_only:
            return False
        assert self.runtime.actions is not None
        label = self.runtime.actions.routes[name].backend.label
        self.notify(f"{name} cannot be changed: {state.read_only} at {label}", severity="warning",
                    timeout=8, markup=False)  # fmt: skip
        return True

    @work(exclusive=True, group="action-plan", exit_on_error=False)
    async def _plan(
        self, action: Action, route_name: str, endpoint: str | None, one_key: bool = False
    ) -> None:
        actions = self.runtime.actions
        assert actions is not None
        plan = await actions.plan(action, actions.routes[route_name], endpoint)
        if one_key:
            # the guard's offer: one key, unless the route is protected
            plan = replace(plan, needs_typing=plan.protected)
        self.push_screen(ConfirmScreen(plan), callback=lambda confirmed: self._confirmed(plan, confirmed))

    def _confirmed(self, plan: Plan, confirmed: bool | None) -> None:
        self._sync_panes()
        if confirmed:
            self._execute(plan)

    @work(exclusive=True, group="action-apply", exit_on_error=False)
    async def _execute(self, plan: Plan) -> None:
        outcome = await self.runtime.act(plan)
        self.last_outcome = outcome
        severity = "information" if outcome.ok else "error"
        if outcome.ok:
            message = f"{outcome.message} (verified in {outcome.elapsed_ms:.0f} ms)"
        else:
            message = outcome.message
        title = {OutcomeKind.OK: "Done", OutcomeKind.STALE: "Nothing applied: the route changed"}.get(
            outcome.kind, outcome.kind.value.upper()
        )
        self.notify(message, title=title, severity=severity, timeout=6 if outcome.ok else 30, markup=False)
        await self.runtime.after_action()
        if outcome.kind is OutcomeKind.STALE:
            # the route changed underneath: plan again from what it is now, never overwrite it
            self._plan(plan.action, plan.route, plan.endpoint)

    @on(GuardBreached)
    def _guard_breached(self, message: GuardBreached) -> None:
        breach, outcome = message.breach, message.outcome
        if outcome is not None:
            severity = "warning" if outcome.ok else "error"
            self.notify(f"{breach.message}; rolled back: {outcome.message}", title="Guard", severity=severity,
                        timeout=60, markup=False)  # fmt: skip
            return
        self.notify(breach.message, title="Guard: roll back?", severity="error", timeout=60, markup=False)
        if not self.runtime.read_only and not isinstance(self.screen, ConfirmScreen):
            self._plan(Action.ROLLBACK, breach.watch.route, None, one_key=True)

    @on(EndpointPane.DetailRequested)
    def _endpoint_detail(self, message: EndpointPane.DetailRequested) -> None:
        screen = EndpointDetailScreen(message.endpoint, self.runtime.snapshot)
        self.push_screen(screen, callback=lambda _: self._sync_panes())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for index, pane in enumerate(self.panes):
            yield SystemCommand(
                f"Go to {pane.title}", f"Move to the {pane.title} pane", lambda i=index: self._activate(i)
            )
            yield SystemCommand(
                f"Zoom {pane.title}",
                f"Show the {pane.title} pane full screen (key {index + 1})",
                lambda i=index: self.action_zoom(i),
            )
        yield SystemCommand("Leave zoom", "Show all panes again (Esc)", self.action_unzoom)
        signals = self.signal_pane
        yield SystemCommand(
            "Acknowledge signal", "Acknowledge the selected signal (a)", signals.action_acknowledge
        )
        yield SystemCommand(
            "Mute signal source", "Mute the selected signal's source (m)", signals.action_mute
        )
        yield from self._signal_undo_commands(signals)
        if not self.runtime.read_only and self.runtime.actions and self.runtime.actions.routes:
            for k in ROUTE_KEYS:
                yield SystemCommand(
                    f"Route: {k.title}",
                    k.tooltip.removeprefix("Endpoints: "),
                    lambda a=k.action.value: self.action_act(a),
                )
        pins = self.pin_pane
        yield SystemCommand("Pin details", "Show the selected pin in full (Enter)", pins.action_open)
        if not self.runtime.read_only:
            yield SystemCommand("Bump pin", "Plan a bump of the selected pin (b)", pins.action_bump)
        yield SystemCommand("Signal details", "Show the selected signal in full (Enter)", signals.action_open)
        yield SystemCommand("Help", "Show every key binding (?)", self.action_help)
        yield from super().get_system_commands(screen)

    def _signal_undo_commands(self, signals: SignalPane) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Un-acknowledge signal", "Make the selected signal new again", signals.action_unacknowledge
        )
        for source in sorted(self.runtime.muted):
            yield SystemCommand(
                f"Unmute {source}", "Show this signal source's signals again", partial(self._unmute, source)
            )

    @work(group="signals", exit_on_error=False)
    async def _unmute(self, source: str) -> None:
        await self.runtime.unmute_source(source)
        self.notify(f"unmuted {source}", timeout=4, markup=False)
