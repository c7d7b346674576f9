"""Wake-ups between local processes (runner.store.sqlite.wakeup): datagram sockets."""

from __future__ import annotations

import threading

from runner.store.sqlite import wakeup


def test_a_producer_poke_wakes_a_listening_worker(tmp_path):
    woken = threading.Event()
    listener = wakeup.Listener(tmp_path / "jobs.db", woken.set)
    assert listener.start()
    notifier = wakeup.Notifier(tmp_path / "jobs.db")
    try:
        assert notifier.notify()
        assert woken.wait(10.0)
    finally:
        notifier.close()
        listener.stop()


def test_an_idle_listener_stops_without_waiting_out_its_receive(tmp_path, monkeypatch):
    # A worker stopped while idle used to sit in recv until its timeout (a second).
    monkeypatch.setattr(wakeup, "RECEIVE_TIMEOUT", 60.0)
    wakes: list[int] = []
    listener = wakeup.Listener(tmp_path / "jobs.db", lambda: wakes.append(1))
    assert listener.start()
    listener.stop()
    assert listener._thread is not None and not listener._thread.is_alive()
    assert wakes == []  # the stop's own poke is not a wake-up
    assert not list((tmp_path / "jobs.db-wake").glob("*.sock"))
