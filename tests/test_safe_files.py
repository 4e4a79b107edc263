"""The files fleetdeck writes on a shared box: the lock file (no symlink is followed, mode, owner and group
kept) and the store (private when fleetdeck creates it, as set by its owner when it exists)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console import locations, pins_cli
from console.config import load_config
from console.model import Pin
from console.pins import bump_lock, load_pins, plan_bump, render_pins, save_pins
from console.store import Store

REV_A = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
REV_B = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927"
LOCK = f"""\
# pinned by the serving team
[[pins]]
name = "qwen3-8b"  # chat
model = "Qwen/Qwen3-8B"
revision = "{REV_A}"
engine = "vllm"
engine_version = "0.32.0"
"""
SECRET = "root:$6$only-root-reads-this:19000:0:99999:7:::\n"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other users needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ownership(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


# --- the lock file ---------------------------------------------------------------------------------


def test_planted_symlinks_are_never_followed(tmp_path: Path):
    """Symlinks at every name a writer could predict point at a root-only file; the bump touches none."""
    secret = tmp_path / "shadow"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    lock = tmp_path / "fleet.lock"
    lock.write_text(LOCK)
    pids = {os.getpid(), os.getppid(), *range(1, 64), *range(os.getpid() - 32, os.getpid() + 32)}
    names = [f".fleet.lock.{pid}.tmp" for pid in pids if pid > 0]
    names += ["fleet.lock.tmp", ".fleet.lock.tmp", "fleet.lock~", ".fleet.lock.swp", "fleet.lock.new"]
    for name in names:
        (tmp_path / name).symlink_to(secret)

    pins = load_pins(lock)
    bump_lock(lock, plan_bump(pins, "qwen3-8b", REV_B))

    assert secret.read_text() == SECRET and mode(secret) == 0o600
    assert all(os.readlink(tmp_path / name) == str(secret) for name in names)
    assert not lock.is_symlink() and lock.is_file()
    (pin,) = load_pins(lock)
    assert lock.read_text() == render_pins([pin], LOCK)  # the whole file, nothing cut or mixed in
    assert pin.revision == REV_B and pin.previous[0].revision == REV_A
    planted = {secret.name, lock.name, *names}
    assert [p.name for p in tmp_path.iterdir() if p.name not in planted] == []  # no temporary file left


@pytest.mark.parametrize("file_mode", [0o660, 0o640, 0o600, 0o664])
@as_root
def test_a_bump_by_root_keeps_mode_owner_and_group(tmp_path: Path, file_mode: int):
    lock = tmp_path / "fleet.lock"
    lock.write_text(LOCK)
    os.chown(lock, 4101, 4102)  # opsbob:opsgrp
    lock.chmod(file_mode)
    before = ownership(lock)

    bumped, note = bump_lock(lock, plan_bump(load_pins(lock), "qwen3-8b", REV_B))

    assert ownership(lock) == before == (4101, 4102, file_mode)
    assert note == "" and bumped.revision == REV_B == load_pins(lock)[0].revision


def test_a_new_lock_file_is_readable_as_the_umask_allows(tmp_path: Path, umask: None):
    for mask, expected in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600)):
        lock = tmp_path / f"fleet-{mask:o}.lock"
        os.umask(mask)
        assert save_pins(lock, [Pin(name="a", model="m", revision=REV_A)]) == ""
        assert mode(lock) == expected, oct(mask)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's own tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="fleetdeck-shared-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def as_user(uid: int, groups: list[int], work: Callable[[], str]) -> str:
    """Run `work` in a child process that has become user `uid` (the interpreter lives in root's home, so
    the child forks rather than starting a new one); returns what `work` returned."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read)
            os.setgroups(groups)
            os.setgid(uid)
            os.setuid(uid)
            os.write(write, work().encode() or b"-")
            code = 0
        except BaseException as exc:
            os.write(write, f"failed: {exc}".encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as said:
        report = said.read().decode()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    return "" if report == "-" else report


def bump_as(uid: int, groups: list[int], lock: Path) -> str:
    """The note of a bump made by user `uid`: what of the file's mode, owner and group was not kept."""
    return as_user(uid, groups, lambda: bump_lock(lock, plan_bump(load_pins(lock), "qwen3-8b", REV_B))[1])


@as_root
def test_a_group_member_keeps_group_and_mode_and_hears_the_owner_changed(shared_dir: Path):
    team = shared_dir / "team"
    team.mkdir()
    os.chown(team, 4101, 4102)
    team.chmod(0o770)
    lock = team / "fleet.lock"
    lock.write_text(LOCK)
    os.chown(lock, 4101, 4102)
    lock.chmod(0o660)

    note = bump_as(4103, [4102], lock)  # opsalice, in opsgrp, bumps opsbob's file

    assert ownership(lock) == (4103, 4102, 0o660)  # only root could keep opsbob as the owner
    assert "owner could not be kept (uid 4101 -> 4103" in note and "group" not in note
    assert load_pins(lock)[0].revision == REV_B


@as_root
def test_a_group_that_cannot_be_kept_loses_its_permissions(shared_dir: Path):
    own = shared_dir / "own"
    own.mkdir()
    os.chown(own, 4103, 4103)
    lock = own / "fleet.lock"
    lock.write_text(LOCK)
    os.chown(lock, 4101, 4102)
    lock.chmod(0o664)

    note = bump_as(4103, [], lock)  # not in opsgrp: the group's bits would go to another group

    assert ownership(lock) == (4103, 4103, 0o604)
    assert "group 4102 could not be kept (not a member): group permissions dropped" in note
    assert load_pins(lock)[0].revision == REV_B


@as_root
def test_the_cli_says_when_the_owner_changed(shared_dir: Path):
    team = shared_dir / "team"
    team.mkdir()
    os.chown(team, 4101, 4102)
    team.chmod(0o770)
    (team / "fleetdeck.toml").write_text('[console]\ndb = "store.sqlite"\n')
    lock = team / "fleet.lock"
    lock.write_text(LOCK)
    os.chown(lock, 4101, 4102)
    lock.chmod(0o660)
    config = load_config(team / "fleetdeck.toml")

    def bump() -> str:
        out = io.StringIO()
        pins_cli.bump(config, config.db_path, "qwen3-8b", REV_B, "revision", True, False, out)
        return out.getvalue()

    import concurrent.futures.thread  # noqa: F401 - loaded here: as another user the child cannot read it

    said = as_user(4103, [4102], bump).splitlines()

    assert said[-2] == "bumped qwen3-8b: revision 8b1e0d4 -> 3f2a91c"
    assert said[-1] == (
        f"note: {lock} is now uid 4103 gid 4102 mode 0660 (was uid 4101 gid 4102 mode 0660): "
        "only root keeps another user as the owner, and only a member keeps a group"
    )


# --- the store -------------------------------------------------------------------------------------


async def test_a_new_store_is_private_whatever_the_umask(tmp_path: Path, monkeypatch, umask: None):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = locations.default_db_path()
    assert path.is_relative_to(tmp_path / "state")
    os.umask(0)  # the most open umask: the modes come from fleetdeck, not from it
    async with await Store.open(path) as store:
        await store.set_source_state("github:vllm-project/vllm", {"polled": True})
        await store.journal_intent(
            operator="root", ssh_client=None, route="r", backend="b", action="a", before={}, after={}
        )
        wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
        assert wal.exists() and shm.exists()
        assert {p.name: mode(p) for p in (path, wal, shm)} == {
            path.name: 0o600,
            wal.name: 0o600,
            shm.name: 0o600,
        }
    for directory in (tmp_path / "state", path.parent):
        assert mode(directory) == 0o700, directory


async def test_a_store_shared_on_purpose_keeps_what_its_owner_set(tmp_path: Path, umask: None):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o2770)
    path = shared / "fleet.sqlite"
    async with await Store.open(path):
        pass
    path.chmod(0o660)  # the team's store: every member reads and writes it

    os.umask(0o077)
    async with await Store.open(path) as store:
        await store.set_source_state("pypi:vllm", {"polled": True})
        wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
        assert (mode(path), mode(wal), mode(shm)) == (0o660, 0o660, 0o660)
    assert mode(shared) == 0o2770
