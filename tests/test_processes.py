"""Which processes of a data dir are alive: a flock each process holds for its lifetime decides it."""

from __future__ import annotations

from pathlib import Path

from server.store.processes import ProcessLock, is_alive


def test_a_running_process_is_alive_and_a_closed_one_is_not(tmp_path: Path) -> None:
    lock = ProcessLock(tmp_path)
    assert is_alive(tmp_path, lock.id)
    lock.close()
    assert not is_alive(tmp_path, lock.id)


def test_an_unknown_or_malformed_process_id_is_not_alive(tmp_path: Path) -> None:
    assert not is_alive(tmp_path, None)
    assert not is_alive(tmp_path, "0" * 32)
    assert not is_alive(tmp_path, "../../etc/passwd")


def test_a_starting_process_removes_the_entries_of_dead_ones_and_keeps_the_living(tmp_path: Path) -> None:
    living = ProcessLock(tmp_path)
    dead = tmp_path / "processes" / ("d" * 32 + ".lock")  # what kill -9 leaves: a file nobody holds a lock on
    dead.write_bytes(b"12345")

    newcomer = ProcessLock(tmp_path)

    entries = {p.stem for p in (tmp_path / "processes").glob("*.lock")}
    assert entries == {living.id, newcomer.id}
    living.close()
    newcomer.close()
