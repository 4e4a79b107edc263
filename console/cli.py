"""The `fleetdeck` command: the live console, the demo, and a config check."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from console.config import (
    Config,
    ConfigError,
    check_config,
    default_config,
    discover_config,
    load_config,
    zero_config_notice,
)
from console.inert import inert

if TYPE_CHECKING:
    from console.feeds import Feeds
    from console.model import FleetSnapshot

PIPE_CLOSED = 141  # the status of a command ended by SIGPIPE, as a shell reports it
# --color -> the colour system Textual is told to use; read when Textual is imported
COLOR_SYSTEMS = {"auto": None, "truecolor": "truecolor", "256": "256", "16": "standard", "none": None}


def _apply_color(choice: str, env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Set the colour system before Textual is imported; TERM and COLORTERM are never touched."""
    system = COLOR_SYSTEMS[choice]
    if system is not None:
        env["TEXTUAL_COLOR_SYSTEM"] = system
    if choice == "none":
        env["NO_COLOR"] = "1"


def _mouse(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Mouse reporting, except inside GNU screen: while it is on, screen holds a lone Escape until the
    next key arrives, so Esc would close nothing and the next key would read as Alt+key."""
    return "STY" not in env


def _version() -> str:
    try:
        return version("fleetdeck")
    except PackageNotFoundError:
        return "unknown"


def _count(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high, with an error that names the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low} to {high}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $FLEETDECK_CONFIG, ./fleetdeck.toml, then the user config dir)",
    )
    common.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the SQLite store (default: in the user state dir)",
    )
    common.add_argument(
        "--read-only", action="store_true", default=argparse.SUPPRESS, help="no actions: watch only"
    )
    common.add_argument(
        "--color",
        choices=sorted(COLOR_SYSTEMS),
        default=argparse.SUPPRESS,
        help="colours to use (default: auto, from the terminal; NO_COLOR is honoured)",
    )
    parser = argparse.ArgumentParser(
        prog="fleetdeck",
        parents=[common],
        description="A terminal operations console for LLM serving fleets: GPUs, endpoints, pins, signals.",
    )
    parser.add_argument("--version", action="version", version=f"fleetdeck {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", parents=[common], help="the live console (the default)")
    demo = commands.add_parser("demo", parents=[common], help="the console on the built-in demo fleet")
    demo.add_argument("--seed", type=int, default=7, help="the demo fleet's seed (default 7)")
    demo.add_argument(
        "--hosts",
        type=int,
        default=1,
        choices=range(1, 33),
        metavar="N",
        help="GPU hosts of 8 GPUs (default 1)",
    )
    demo.add_argument(
        "--endpoints",
        type=_count(6, 1024),
        default=6,
        metavar="N",
        help="endpoints, 6 to 1024: beyond the first six, healthy replicas of the chat route (default 6)",
    )
    demo.add_argument(
        "--signals",
        type=_count(0, 5_000),
        default=0,
        metavar="N",
        help="older signals, already read, stored before the console starts (default 0)",
    )
    snapshot = commands.add_parser(
        "snapshot", parents=[common], help="collect once from every source, print, exit 1 if down or drifting"
    )
    snapshot.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    snapshot.add_argument("--demo", action="store_true", help="collect from the built-in demo fleet")
    snapshot.add_argument(
        "--window",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between the two scrapes behind TTFT, tokens/s and error rate (default 10, 0: one)",
    )
    serve = commands.add_parser(
        "serve", parents=[common], help="the console in a browser: one console per browser session"
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", default="8765", help="the port to listen on, 0 for any free one (default 8765)"
    )
    serve.add_argument(
        "--public",
        action="store_true",
        help="allow a --host other than loopback: plain HTTP, so put a TLS proxy in front (--url)",
    )
    serve.add_argument(
        "--allow-actions",
        action="store_true",
        help="let browser sessions act, each as the operator its token names (needs --operators-file)",
    )
    serve.add_argument(
        "--operators-file",
        type=Path,
        metavar="PATH",
        help="lines `name token`, one per operator, readable only by you; each opens the URL with theirs",
    )
    serve.add_argument(
        "--max-sessions",
        type=_count(1, 256),
        metavar="N",
        help="browser sessions open at once, 1 to 256 (default: serve.max_sessions in the config, else 4)",
    )
    serve.add_argument("--demo", action="store_true", help="serve the built-in demo fleet")
    serve.add_argument(
        "--url", metavar="URL", help="the address browsers use, when not http://HOST:PORT (a proxy in front)"
    )
    check = commands.add_parser("check", parents=[common], help="validate a config file and exit")
    check.add_argument("file", nargs="?", type=Path, metavar="CONFIG", help="the file to check")
    pins = commands.add_parser("pins", parents=[common], help="the pins, their drift and upstream news")
    pins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pin_commands = pins.add_subparsers(dest="pins_command", metavar="SUBCOMMAND")
    bump = pin_commands.add_parser(
        "bump", parents=[common], help="move a pin to a new version (a plan first, then a confirmation)"
    )
    bump.add_argument("pin", help="the pin's name in the lock file")
    bump.add_argument("--to", metavar="VERSION", help="the new value (default: what upstream names)")
    bump.add_argument(
        "--field",
        choices=["auto", "revision", "engine_version", "image"],
        default="auto",
        help="what to move (default: what upstream names, else revision)",
    )
    bump.add_argument("--yes", action="store_true", help="bump without asking")
    _signals_parser(commands, common)
    audit = commands.add_parser("audit", parents=[common], help="print the journal of every action attempt")
    audit.add_argument("--route", metavar="NAME", help="only this route")
    audit.add_argument("--since", metavar="TIME", help="from this time on: an age (2h, 7d) or ISO 8601")
    audit.add_argument("--until", metavar="TIME", help="up to this time: an age (2h, 7d) or ISO 8601")
    audit.add_argument("--limit", type=int, default=500, help="at most this many entries (default 500)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _signals_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    signals = commands.add_parser(
        "signals", parents=[common], help="the signal sources and recent signals; mute, unmute, acknowledge"
    )
    signals.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    signals.add_argument(
        "--limit", type=_count(0, 5_000), default=20, metavar="N", help="recent signals listed (default 20)"
    )
    verbs = signals.add_subparsers(dest="signals_command", metavar="SUBCOMMAND")
    muting_verbs = (("mute", "hide a source's signals"), ("unmute", "show a muted source's signals again"))
    for verb, what in muting_verbs:
        muting = verbs.add_parser(verb, parents=[common], help=what)
        muting.add_argument("source", help="the source, as listed (github:vllm-project/vllm) or its label")
    for verb, what in (("ack", "acknowledge a signal"), ("unack", "make an acknowledged signal new again")):
        acking = verbs.add_parser(verb, parents=[common], help=what)
        acking.add_argument("id", help="the signal's id, as listed")
        acking.add_argument("--source", help="the signal's source, when two sources have the id")


def _signals(args: argparse.Namespace, config: Config) -> int:
    from console import signals_cli
    from console.model import SignalState
    from console.store import StoreError

    db = getattr(args, "db", None) or config.db_path
    verb = args.signals_command
    try:
        if verb in ("mute", "unmute"):
            return signals_cli.mute(config, db, args.source, verb == "mute")
        if verb in ("ack", "unack"):
            state = SignalState.ACKNOWLEDGED if verb == "ack" else SignalState.NEW
            return signals_cli.acknowledge(db, args.id, args.source, state)
        return signals_cli.show(config, db, args.json, args.limit)
    except (signals_cli.SignalsError, StoreError) as exc:
        return _fail(str(exc))


def _audit(args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from console.audit import as_json, as_table, now, parse_time, read_journal
    from console.store import StoreError

    try:
        since = parse_time(args.since, now()) if args.since else None
        until = parse_time(args.until, now()) if args.until else None
    except ValueError as exc:
        return _fail(str(exc))
    db = getattr(args, "db", None) or config.db_path
    try:
        entries = asyncio.run(read_journal(db, args.route, since, until, args.limit))
    except StoreError as exc:
        return _fail(str(exc))
    if args.json:
        for entry in entries:
            print(as_json(entry))
    elif entries:
        print(as_table(entries))
    else:
        print("no journal entries match")
    return 0


def _check(target: Path | None, db: Path | None) -> int:
    """`fleetdeck check`: what the run would say about the file, errors (exit 2) and warnings."""
    if target is None:
        return _fail("no config file found (give one: fleetdeck check PATH)")
    checked = check_config(target, db)
    _warn([f"{target}: {line}" for line in checked.warnings])
    config = checked.config
    if checked.empty:
        print(
            f"{target}: ok, but nothing is configured: the run reads this box's GPUs only "
            "(add [[endpoints]], [[gpus]], [[signals]] or [[routes]]; every option: config.example.toml)"
        )
    else:
        print(
            f"{target}: ok ({len(config.endpoints)} endpoints, {len(config.gpus)} GPU sources, "
            f"{len(config.signals)} signal sources, {len(config.routes)} routes"
            + (f", {_plural(len(checked.warnings), 'warning')})" if checked.warnings else ")")
        )
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _fail(lines: list[str] | str) -> int:
    for line in [lines] if isinstance(lines, str) else lines:
        print(f"fleetdeck: {inert(line)}", file=sys.stderr)  # errors quote config values and answers
    return 2


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"warning: {inert(line)}", file=sys.stderr)  # warnings quote config values too


def _load(path: Path | None) -> tuple[Config, bool]:
    """The config for a command that reads it (no run): the fields only, and whether none was found."""
    found = discover_config(path)
    if found is None:
        return default_config(), True
    return load_config(found), False


def _load_run(path: Path | None, db: Path | None, store: bool) -> tuple[Config, bool, list[str]]:
    """The config to run with, checked as `check` does; whether it is the zero-config local mode; and
    the warnings to show once."""
    found = discover_config(path)
    if found is None:
        return default_config(), True, []
    checked = check_config(found, db, store=store)
    return checked.config, False, [f"{found}: {line}" for line in checked.warnings]


def _pins(args: argparse.Namespace, config: Config, zero: bool) -> int:
    from console import pins_cli
    from console.pins import PinsError

    db = getattr(args, "db", None) or config.db_path
    try:
        if args.pins_command == "bump":
            read_only = getattr(args, "read_only", False)
            return pins_cli.bump(config, db, args.pin, args.to, args.field, args.yes, read_only)
        return pins_cli.show(config, db, args.json)
    except PinsError as exc:
        return _fail(str(exc))


def _serve(args: argparse.Namespace, config: Config, zero: bool, demo: bool) -> int:
    from console import serve

    try:
        port = serve.parse_port(args.port)
    except ValueError as exc:
        return _fail(str(exc))
    host = args.host
    try:
        loopback = serve.is_loopback(host)
    except OSError as exc:
        return _fail(f"cannot listen on {host!r}: {exc.strerror or exc}")
    if not loopback and not args.public:
        return _fail(
            f"refusing to serve on {host!r}: not a loopback address, and the token would cross the network "
            "in plain HTTP (add --public to serve it anyway, behind a TLS proxy)"
        )
    if args.allow_actions and args.operators_file is None:
        return _fail(
            "--allow-actions needs to know who acts: add --operators-file PATH, "
            "a file only you can read with lines `name token`"
        )
    try:
        operators = serve.load_operators(args.operators_file) if args.operators_file else None
    except ValueError as exc:
        return _fail(str(exc))
    read_only = getattr(args, "read_only", False) or not args.allow_actions or config.console.read_only
    # the sessions read the file checked here, not whatever they would discover on their own
    config_file = getattr(args, "config", None) or (None if demo or zero else config.source_path)
    given = {"config": config_file, "db": getattr(args, "db", None), "color": getattr(args, "color", None)}
    watch = serve.session_command(serve.session_argv(demo=demo, read_only=True, **given))
    act = (
        None if read_only else serve.session_command(serve.session_argv(demo=demo, read_only=False, **given))
    )
    try:
        sock = serve.listen(host, port)
    except OSError as exc:
        return _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    port = sock.getsockname()[1]
    # textual-serve appends its own paths (/ws, /static) to this address
    url = args.url.rstrip("/") if args.url else serve.browser_url(host, port)
    token = serve.launch_token()
    tokens: dict[str, str | None] = dict(operators) if operators else {token: None}
    access = serve.Access.build(tokens, url, serve.browser_url(host, port).split("://", 1)[1], port)
    if args.public:
        print(
            f"fleetdeck serve: warning: plain HTTP on {host}:{port}: whoever can read the traffic can take "
            "a token; serve it behind a TLS proxy (--url https://...)",
            file=sys.stderr,
            flush=True,
        )
    modes = ", ".join(["read-only" if read_only else "actions allowed", "demo" if demo else "live"])
    max_sessions = args.max_sessions or config.serve.max_sessions

    def ready() -> None:
        if operators:
            names = ", ".join(sorted(operators.values()))
            # the how-to goes out before the URL line, so whoever waits for that line can read both
            print(
                f"fleetdeck serve: each operator opens {url}/?token=TOKEN with their own token "
                f"from {args.operators_file}: {names}",
                file=sys.stderr,
                flush=True,
            )
            print(f"fleetdeck serve: {url} ({modes}, {len(operators)} operators)", flush=True)
        else:
            print(f"fleetdeck serve: {url}/?token={token} ({modes})", flush=True)

    serve.ConsoleServer(url, access, watch, act, max_sessions).run(sock, ready)
    return 0


def _seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds from 0 to 3600")
    return value


def _snapshot(feeds: Feeds, as_json: bool, window: float) -> int:
    import asyncio
    import time

    from rich.console import Console

    from console import snapshot
    from console.store import StoreError

    try:
        fleet = asyncio.run(_collect(feeds, window))
    except StoreError as exc:
        return _fail(str(exc))
    runtime = feeds.runtime
    doc = snapshot.document(fleet, runtime.mode.value, time.time(), bool(runtime.config.gpus), window)
    try:
        if as_json:
            print(snapshot.to_json(doc))
        else:
            if runtime.zero_config:
                for line in zero_config_notice():
                    print(line)
                print()
            snapshot.print_tables(doc, Console())
        sys.stdout.flush()
    except BrokenPipeError:  # a reader such as `head` went away; nothing is wrong with the fleet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if doc["healthy"] else 1


async def _collect(feeds: Feeds, window: float) -> FleetSnapshot:
    async with feeds:
        return await feeds.collect(window)


def _quiet_on_closed_pipe(run: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """A reader such as `head` that goes away early ends the command quietly, as SIGPIPE would,
    instead of in a traceback (the recipe in Python's signal module documentation)."""

    @functools.wraps(run)
    def guarded(argv: list[str] | None = None) -> int:
        try:
            code = run(argv)
            sys.stdout.flush()  # what is still buffered would otherwise fail at exit, past this handler
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return PIPE_CLOSED
        return code

    return guarded


@_quiet_on_closed_pipe
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    config_path: Path | None = getattr(args, "config", None)
    db = getattr(args, "db", None)
    warnings: list[str] = []
    try:
        if command == "check":
            return _check(args.file or discover_config(config_path), db)
        if command == "audit":
            return _audit(args, _load(config_path)[0])
        if command == "signals":
            return _signals(args, _load(config_path)[0])
        if command == "pins":
            return _pins(args, *_load(config_path))
        demo = command == "demo" or (command in ("snapshot", "serve") and args.demo)
        if demo and not config_path:
            config, zero = default_config(), False
        else:
            # the demo keeps its store in a directory of its own unless --db names one
            config, zero, warnings = _load_run(config_path, db, store=not demo or db is not None)
        if command == "serve":
            _warn(warnings)
            return _serve(args, config, zero, demo)
    except ConfigError as exc:
        _warn([f"{exc.source}: {line}" for line in exc.warnings])
        return _fail(str(exc).splitlines())

    _apply_color(getattr(args, "color", None) or config.console.color)
    from console.feeds import Feeds

    read_only = getattr(args, "read_only", False)
    # the one place where the live or the demo fleet is chosen; nothing downstream asks which
    if demo:
        feeds = Feeds.demo(
            config,
            db_path=db,
            read_only=read_only,
            seed=getattr(args, "seed", 7),
            hosts=getattr(args, "hosts", 1),
            endpoints=getattr(args, "endpoints", 6),
            signals=getattr(args, "signals", 0),
        )
    else:
        feeds = Feeds.live(config, db_path=db, read_only=read_only, zero_config=zero)
    runtime = feeds.runtime
    if command == "snapshot":
        _warn(warnings)
        return _snapshot(feeds, args.json, args.window)
    from console.app import FleetdeckApp

    # shown once, on screen: lines printed now would be hidden by the console's screen
    app = FleetdeckApp(runtime, warnings=warnings)
    app.run(mouse=_mouse())
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
