#!/usr/bin/env python3
"""Benchmark a terminal console running in a pseudo-terminal.

Runs CMD (default: ``python -m console demo``) in a pty of each requested size and reports,
per size: time from exec to the first full frame, startup CPU, steady-state CPU seconds per
minute, bytes per second written to the terminal, total bytes, peak RSS and how the process
exited; optionally key-press latency.  Linux only (reads /proc).  Needs pyte; nothing else
outside the standard library.

Usage:
    python bench/console_bench.py [--size 80x24] [--size 120x40 ...] [--seconds 20] [--json]
                                  [--ready-text T ...] [--data-text T ...] [--timeout 15]
                                  [--truecolor] [--keys-latency N [--key tab]] [-- CMD ...]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import selectors
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import pyte
except ImportError:  # pragma: no cover - environment problem, not a bench result
    sys.exit("console_bench: pyte is required (pip install pyte)")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = ["80x24", "120x40"]
DEFAULT_READY = ["GPUs", "Endpoints", "Pins", "Signals", "DEMO"]
DEFAULT_DATA = ["H200"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIT_GRACE_S = 2.0
KEY_SPACING_S = 0.5
SETTLE_SILENCE_S = 0.030
FRAME_SILENCE_S = 0.050
FRAME_SETTLE_CAP_S = 1.0

KEYS = {
    "tab": b"\t",
    "shift+tab": b"\x1b[Z",
    "enter": b"\r",
    "escape": b"\x1b",
    "space": b" ",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "pageup": b"\x1b[5~",
    "pagedown": b"\x1b[6~",
    "home": b"\x1b[H",
    "end": b"\x1b[F",
}


# --------------------------------------------------------------------------- /proc readers


def read_cpu(pid: int) -> tuple[float, float] | None:
    """(own user+system, reaped children's user+system) in seconds, all threads included."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces or parens: split after the last ')'.
    rest = data[data.rindex(b")") + 2 :].split()
    # rest[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..17.
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def read_status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# --------------------------------------------------------------------------- pty session


def _make_controlling_tty() -> None:  # runs in the child between fork and exec
    # start_new_session has already called setsid(); stdin is the pty slave.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtySession:
    """A child process on a pty whose output is read continuously into a pyte screen."""

    def __init__(self, cmd: list[str], cols: int, rows: int, env: dict[str, str], cwd: str | None):
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        # Answer device-attribute / cursor-position queries like a real terminal would.
        self.screen.write_process_input = self._reply
        self.stream = pyte.ByteStream(self.screen)
        self.bytes_total = 0
        self.eof = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.master, slave = os.openpty()
        self.sel = selectors.DefaultSelector()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.set_blocking(self.master, False)
            self.sel.register(self.master, selectors.EVENT_READ)
            self.t_exec = time.monotonic()
            self.proc = subprocess.Popen(
                cmd,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                close_fds=True,
                start_new_session=True,
                preexec_fn=_make_controlling_tty,
            )
        except BaseException:
            self.close()
            raise
        finally:
            os.close(slave)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _reply(self, data: str) -> None:
        self.write(data.encode())

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    def screen_text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip("\n")

    def _read_available(self) -> bytes:
        """Everything readable right now (b"" at EOF), so pyte is fed in batches, not per 4 KiB."""
        parts: list[bytes] = []
        size = 0
        while size < (1 << 20):
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                break
            except OSError:  # EIO: every slave fd is closed (child gone)
                data = b""
            if not data:
                self.eof = True
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def pump(self, deadline: float, on_chunk=None) -> None:
        """Read output until `deadline` (monotonic), EOF, or on_chunk(t, n) returns True.

        `t` is when the batch was read (before the screen was updated from it).
        """
        while not self.eof:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return
            if not self.sel.select(timeout):
                continue
            data = self._read_available()
            now = time.monotonic()
            if not data:
                continue
            self.bytes_total += len(data)
            self.stream.feed(data)
            if on_chunk is not None and on_chunk(now, len(data)):
                return

    def pump_until_quiet(self, silence: float, until: float, last: float) -> float:
        """Read until `silence` seconds pass without output, or until `until`.

        `last` is the time of the latest output seen so far; returns the updated one.
        """
        latest = [last]

        def seen(t: float, _n: int) -> bool:
            latest[0] = t
            return True

        while not self.eof:
            before = latest[0]
            self.pump(min(until, before + silence), seen)
            if latest[0] == before:  # no output for `silence` seconds, or `until` reached
                break
        return latest[0]

    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def wait_exit(self, seconds: float) -> bool:
        """Keep draining output while waiting up to `seconds` for the child to exit."""
        deadline = time.monotonic() + seconds
        while not self.exited():
            now = time.monotonic()
            if now >= deadline:
                return False
            if self.eof:
                time.sleep(min(0.02, deadline - now))
            else:
                self.pump(min(deadline, now + 0.02))
        return True

    def signal_group(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal_group(signal.SIGKILL)
            self.proc.wait()
        try:
            self.sel.close()
        finally:
            with contextlib.suppress(OSError):
                os.close(self.master)


# --------------------------------------------------------------------------- one run


@dataclass
class Result:
    size: str
    cols: int
    rows: int
    cmd: list[str]
    ok: bool = False
    error: str | None = None
    first_frame_s: float | None = None
    frame_settled_s: float | None = None
    startup_cpu_s: float | None = None
    steady_window_s: float | None = None
    steady_cpu_s: float | None = None
    cpu_s_per_min: float | None = None
    children_cpu_s_per_min: float | None = None
    steady_bytes: int | None = None
    bytes_per_s: float | None = None
    startup_bytes: int | None = None
    total_bytes: int = 0
    peak_rss_mib: float | None = None
    rss_at_end_mib: float | None = None
    exit_how: str | None = None
    exit_code: int | None = None
    quit_s: float | None = None
    keys: dict[str, Any] | None = field(default=None)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def measure_keys(sess: PtySession, key: bytes | list[bytes], count: int) -> dict[str, Any]:
    """Press `key` `count` times. A list of keys is pressed in turn, `count` rounds; the figures are
    then the first key's, and each key's own are under "each" in order."""
    turn = [key] if isinstance(key, bytes) else key
    first_ms: list[list[float]] = [[] for _ in turn]
    settle_ms: list[list[float]] = [[] for _ in turn]
    no_response = [0 for _ in turn]
    next_press = time.monotonic() + KEY_SPACING_S
    for press in range(count * len(turn)):
        which = press % len(turn)
        sess.pump(next_press)  # keep draining between presses
        if sess.eof:
            break
        t_write = time.monotonic()
        sess.write(turn[which])
        next_press = t_write + KEY_SPACING_S
        state: dict[str, float] = {}

        def first(t: float, _n: int, state: dict[str, float] = state) -> bool:
            state["first"] = t
            return True

        sess.pump(next_press, first)
        if "first" not in state:
            no_response[which] += 1
            continue
        # The update is on screen once SETTLE_SILENCE_S pass without output (capped at the next press).
        state["last"] = sess.pump_until_quiet(SETTLE_SILENCE_S, next_press, state["first"])
        first_ms[which].append((state["first"] - t_write) * 1000)
        settle_ms[which].append((state["last"] - t_write) * 1000)
    each = [
        {
            "presses": count,
            "no_response": no_response[index],
            "first_byte_ms_p50": percentile(first_ms[index], 50),
            "first_byte_ms_p99": percentile(first_ms[index], 99),
            "settled_ms_p50": percentile(settle_ms[index], 50),
            "settled_ms_p99": percentile(settle_ms[index], 99),
        }
        for index in range(len(turn))
    ]
    return {**each[0], "each": each} if len(turn) > 1 else each[0]


def child_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env["TERM"] = args.term
    # shutil.get_terminal_size() (used by Textual) prefers these over the tty's size.
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    env.pop("COLORTERM", None)
    if args.truecolor:
        env["COLORTERM"] = "truecolor"
    return env


def run_one(args: argparse.Namespace, size: str, cols: int, rows: int) -> Result:
    res = Result(size=size, cols=cols, rows=rows, cmd=args.cmd)
    ready = list(args.ready_text)
    data_markers = list(args.data_text)

    try:
        sess = PtySession(args.cmd, cols, rows, child_env(args), args.cwd)
    except OSError as exc:
        res.error = f"could not start {args.cmd!r}: {exc}"
        res.exit_how = "not started"
        return res

    def full_frame() -> bool:
        text = sess.screen_text()
        return all(m in text for m in ready) and (not data_markers or any(m in text for m in data_markers))

    try:
        pid = sess.pid
        # Phase 1: exec -> first full frame.
        sess.pump(sess.t_exec + args.timeout, lambda _t, _n: full_frame())
        t_ready = time.monotonic()
        if not full_frame():
            why = "process exited" if sess.eof or sess.exited() else f"timeout {args.timeout:g}s"
            res.error = f"no full frame ({why})"
            missing = [m for m in ready if m not in sess.screen_text()]
            if data_markers and not any(m in sess.screen_text() for m in data_markers):
                missing.append(" | ".join(data_markers))
            print(
                f"--- {size}: no full frame ({why}); missing {missing}; last screen:",
                file=sys.stderr,
            )
            print(sess.screen_text(), file=sys.stderr)
            print("--- end of screen", file=sys.stderr)
        else:
            res.first_frame_s = t_ready - sess.t_exec
            # The frame that showed the markers may still be arriving: the steady-state
            # window starts once its burst has ended (FRAME_SILENCE_S without output).
            t_settled = sess.pump_until_quiet(FRAME_SILENCE_S, t_ready + FRAME_SETTLE_CAP_S, t_ready)
            if args.show_frame:
                print(f"--- {size}: first full frame at {res.first_frame_s:.3f}s, settled:", file=sys.stderr)
                print(sess.screen_text(), file=sys.stderr)
                print("--- end of screen", file=sys.stderr)
            res.frame_settled_s = t_settled - sess.t_exec
            # Optional warm-up, then the steady-state window.
            if args.warmup > 0:
                sess.pump(t_ready + args.warmup)
            t0, cpu0, bytes0 = time.monotonic(), read_cpu(pid), sess.bytes_total
            res.startup_bytes = bytes0
            if cpu0 is not None:
                res.startup_cpu_s = sum(cpu0)
            sess.pump(t0 + args.seconds)
            t1, cpu1, bytes1 = time.monotonic(), read_cpu(pid), sess.bytes_total
            window = t1 - t0
            res.steady_window_s = window
            res.steady_bytes = bytes1 - bytes0
            res.bytes_per_s = res.steady_bytes / window if window > 0 else None
            if cpu0 is not None and cpu1 is not None and window > 0:
                res.steady_cpu_s = (cpu1[0] - cpu0[0]) + (cpu1[1] - cpu0[1])
                res.cpu_s_per_min = res.steady_cpu_s / window * 60
                res.children_cpu_s_per_min = (cpu1[1] - cpu0[1]) / window * 60
            if sess.eof or sess.exited():
                res.error = "process exited during the steady-state window"
            elif args.keys_latency > 0:
                res.keys = measure_keys(sess, args.key_bytes, args.keys_latency)
                res.keys["key"] = args.key
                # then the other keys, pressed in turn (down,up keeps a cursor moving on a short list)
                more = [(name, key_bytes(name)) for name in args.more_keys.split(",") if name]
                if more:
                    figures = measure_keys(sess, [key for _, key in more], args.keys_latency)
                    for (name, _), each in zip(more, figures.get("each", [figures]), strict=True):
                        res.keys[name] = each
            res.ok = res.error is None

        # Peak RSS just before terminating.
        hwm = read_status_kib(pid, "VmHWM")
        rss = read_status_kib(pid, "VmRSS")
        res.peak_rss_mib = hwm / 1024 if hwm is not None else None
        res.rss_at_end_mib = rss / 1024 if rss is not None else None

        # Quit: "q", then SIGTERM, then SIGKILL (to the child's process group).
        if sess.exited():
            res.exit_how = "exited early"
        else:
            t_q = time.monotonic()
            sess.write(b"q")
            if sess.wait_exit(QUIT_GRACE_S):
                res.exit_how = "q"
                res.quit_s = time.monotonic() - t_q
            else:
                sess.signal_group(signal.SIGTERM)
                if sess.wait_exit(QUIT_GRACE_S):
                    res.exit_how = "SIGTERM"
                else:
                    sess.signal_group(signal.SIGKILL)
                    sess.wait_exit(QUIT_GRACE_S)
                    res.exit_how = "SIGKILL"
        assert sess.proc is not None
        res.exit_code = sess.proc.wait()
        sess.pump(time.monotonic() + 0.05)  # drain what the child wrote on the way out
    finally:
        sess.close()
        res.total_bytes = sess.bytes_total
    if res.ok and res.exit_how != "q":
        res.error = f"did not quit on 'q' (ended by {res.exit_how})"
        res.ok = False
    return res


# --------------------------------------------------------------------------- output


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list[Result], keys: bool) -> None:
    headers = [
        "size",
        "first frame s",
        "startup CPU s",
        "CPU s/min",
        "bytes/s",
        "total bytes",
        "peak RSS MiB",
        "exit",
    ]
    if keys:
        headers += ["key 1st byte p50/p99 ms", "key settled p50/p99 ms"]
    rows = []
    for r in results:
        exit_text = f"{r.exit_how or '-'} rc={_fmt(r.exit_code, 'd')}"
        if r.exit_how == "q" and r.quit_s is not None:
            exit_text += f" {r.quit_s:.2f}s"
        row = [
            r.size,
            _fmt(r.first_frame_s, ".3f"),
            _fmt(r.startup_cpu_s, ".2f"),
            _fmt(r.cpu_s_per_min, ".2f"),
            _fmt(r.bytes_per_s, ",.0f"),
            _fmt(r.total_bytes, ",d"),
            _fmt(r.peak_rss_mib, ".1f"),
            exit_text,
        ]
        if keys:
            k = r.keys or {}
            row.append(f"{_fmt(k.get('first_byte_ms_p50'), '.1f')}/{_fmt(k.get('first_byte_ms_p99'), '.1f')}")
            row.append(f"{_fmt(k.get('settled_ms_p50'), '.1f')}/{_fmt(k.get('settled_ms_p99'), '.1f')}")
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    print(
        "  ".join(
            h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    )
    for row in rows:
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for r in results:
        if r.error:
            print(f"{r.size}: FAILED: {r.error}")
        if r.keys and r.keys.get("no_response"):
            print(f"{r.size}: {r.keys['no_response']} of {r.keys['presses']} key presses got no output")


# --------------------------------------------------------------------------- CLI


def parse_size(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, not {text!r}") from None
    if not (1 <= cols <= 1000 and 1 <= rows <= 1000):
        raise argparse.ArgumentTypeError(f"size out of range: {text!r}")
    return cols, rows


def key_bytes(name: str) -> bytes:
    if name in KEYS:
        return KEYS[name]
    if len(name) == 1:
        return name.encode()
    raise ValueError(f"unknown key {name!r}: one of {sorted(KEYS)} or one character")


def parse_args(argv: list[str]) -> argparse.Namespace:
    cmd: list[str] | None = None
    if "--" in argv:
        i = argv.index("--")
        argv, cmd = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(
        prog="console_bench.py",
        description="Run a console in a pseudo-terminal and measure CPU, bytes written, RSS and "
        "time to first full frame.",
        epilog="CMD after '--' replaces the default: <this python> -m console demo (run from the "
        "repository root). A custom CMD runs in the current directory and must exec the console "
        "itself (a wrapper such as 'uv run' would be measured instead).",
    )
    p.add_argument("--size", action="append", metavar="COLSxROWS", help=f"default: {' '.join(DEFAULT_SIZES)}")
    p.add_argument(
        "--seconds", type=float, default=20.0, help="steady-state window after the first full frame"
    )
    p.add_argument(
        "--warmup", type=float, default=0.0, help="seconds after the first frame left out of the window"
    )
    p.add_argument(
        "--timeout", type=float, default=15.0, help="max seconds from exec to the first full frame"
    )
    p.add_argument("--ready-text", action="append", metavar="TEXT", help=f"default: {DEFAULT_READY}")
    p.add_argument("--data-text", action="append", metavar="TEXT", help=f"default: {DEFAULT_DATA}")
    p.add_argument("--term", default="xterm-256color", help="TERM for the child (default xterm-256color)")
    p.add_argument("--truecolor", action="store_true", help="set COLORTERM=truecolor for the child")
    p.add_argument(
        "--keys-latency", type=int, default=0, metavar="N", help="press a key N times after the window"
    )
    p.add_argument(
        "--key", default="tab", help=f"key for --keys-latency: one of {sorted(KEYS)} or one character"
    )
    p.add_argument(
        "--more-keys",
        default="",
        metavar="K1,K2",
        help="after --key, press these in turn N times each round and measure each (e.g. down,up)",
    )
    p.add_argument("--show-frame", action="store_true", help="print the settled first frame to stderr")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    args = p.parse_args(argv)

    sizes = args.size or DEFAULT_SIZES
    try:
        args.sizes = [(s, *parse_size(s)) for s in sizes]
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    args.ready_text = args.ready_text if args.ready_text is not None else DEFAULT_READY
    args.data_text = args.data_text if args.data_text is not None else DEFAULT_DATA
    try:
        args.key_bytes = key_bytes(args.key)
        for name in filter(None, args.more_keys.split(",")):
            key_bytes(name)
    except ValueError as exc:
        p.error(str(exc))
    if args.seconds <= 0 or args.timeout <= 0 or args.warmup < 0 or args.keys_latency < 0:
        p.error("--seconds and --timeout must be > 0, --warmup and --keys-latency >= 0")
    if cmd:
        args.cmd, args.cwd = cmd, None
    elif cmd is not None:
        p.error("empty CMD after '--'")
    else:
        args.cmd, args.cwd = [sys.executable, "-m", "console", "demo"], str(REPO_ROOT)
    return args


def main(argv: list[str] | None = None) -> int:
    if not sys.platform.startswith("linux"):
        print("console_bench: Linux only (reads /proc)", file=sys.stderr)
        return 2
    args = parse_args(sys.argv[1:] if argv is None else argv)
    results = []
    try:
        for size, cols, rows in args.sizes:
            print(f"console_bench: {size}, {args.seconds:g}s: {' '.join(args.cmd)}", file=sys.stderr)
            results.append(run_one(args, size, cols, rows))
    except KeyboardInterrupt:
        print("console_bench: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        color = "truecolor" if args.truecolor else "no COLORTERM"
        print(f"cmd: {' '.join(args.cmd)}")
        print(f"TERM={args.term} ({color}); steady window {args.seconds:g}s after the first full frame")
        print_table(results, keys=args.keys_latency > 0)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
