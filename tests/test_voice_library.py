"""The voice library store: its API, pooling, and safety under concurrent readers and a killed writer.

The concurrency tests use real processes on one SQLite file, as `transcribe --jobs N --voices LIB`
and a `toolkit voices add` in another terminal would.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.transcript import VoicePrint
from toolkit.voice_library import LibraryError, VoiceLibrary
from toolkit.voices import pool, unit

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def voice(seed: int, seconds: float = 10.0, encoder: str = "ge2e") -> VoicePrint:
    return VoicePrint(unit(np.random.default_rng(seed).standard_normal(256)), seconds, encoder)


def test_add_list_rename_remove(tmp_path):
    path = tmp_path / "voices.sqlite"
    with pytest.raises(LibraryError, match="no such voice library"):
        VoiceLibrary(path)
    with VoiceLibrary(path, create=True) as library:
        first = library.add("Rasim", voice(1, 12.0), "a.json#SPEAKER_00")
        library.add("  Rasim ", voice(2, 4.0), "b.mp4@1-5")  # spaces around a name are not part of it
        library.add("Elvin", voice(3), "c.json#SPEAKER_01")
        assert [(e.name, e.samples, e.seconds) for e in library.entries()] == [("Elvin", 1, 10.0), ("Rasim", 2, 16.0)]
        assert [s.source for s in library.samples("Rasim")] == ["a.json#SPEAKER_00", "b.mp4@1-5"]
        assert library.samples("Rasim")[0].id == first
        assert np.allclose(library.samples("Rasim")[0].print.embedding, voice(1).embedding, atol=1e-7)

        library.rename("Rasim", "Rasim Aliyev")
        with pytest.raises(LibraryError, match="already a voice"):
            library.rename("Elvin", "Rasim Aliyev")
        with pytest.raises(LibraryError, match="no voice named"):
            library.rename("Nobody", "Somebody")
        assert library.remove("Elvin") == 1
        with pytest.raises(LibraryError, match="no voice named"):
            library.remove("Elvin")
        for bad in ("SPEAKER_01", "PERSON_002", "  "):
            with pytest.raises(LibraryError):
                library.add(bad, voice(4), "x")
        assert [e.name for e in library.entries()] == ["Rasim Aliyev"]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_samples_are_pooled_by_seconds_and_encoder(tmp_path):
    a, b = voice(1, 30.0), voice(2, 10.0)
    with VoiceLibrary(tmp_path / "v.sqlite", create=True) as library:
        library.add("Rasim", a, "a")
        library.add("Rasim", b, "b")
        library.add("Rasim", voice(3, 50.0, encoder="ecapa"), "c")  # another encoder's print: not pooled with ge2e
        pooled = library.voices("ge2e")["Rasim"]
        assert set(library.voices("ecapa")) == {"Rasim"} and library.voices("other") == {}
    expected = unit(30.0 * a.embedding + 10.0 * b.embedding)
    assert float(pooled.embedding @ expected) > 0.99999 and pooled.seconds == 40.0
    assert float(pool([a, b]).embedding @ pooled.embedding) > 0.99999
    with pytest.raises(ValueError):
        pool([a, voice(3, encoder="ecapa")])


def test_not_a_library(tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(LibraryError, match="not a voice library"):
        VoiceLibrary(junk)
    with pytest.raises(LibraryError, match="folder"):
        VoiceLibrary(tmp_path, create=True)


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from toolkit.transcript import VoicePrint
    from toolkit.voice_library import VoiceLibrary
    library = VoiceLibrary(sys.argv[1], create=True)
    rng = np.random.default_rng(0)
    for k in range(40):
        e = rng.standard_normal(256).astype(np.float32)
        library.add("A" if k % 2 else "B", VoicePrint(e / np.linalg.norm(e), 5.0, "ge2e"), f"sample {k}")
    for k in range(60):  # the whole library flips between names: one UPDATE, one transaction each
        library.rename("A", "C"); library.rename("B", "A"); library.rename("C", "B")
    print("done", flush=True)
""")

_READER = textwrap.dedent("""
    import sys, time
    from collections import Counter
    from toolkit.voice_library import VoiceLibrary
    library = VoiceLibrary(sys.argv[1])
    last, reads, deadline = 0, 0, time.monotonic() + 120
    while time.monotonic() < deadline:
        names = Counter(s.name for s in library.samples())  # one SELECT: one snapshot
        pooled = library.voices("ge2e")  # one read transaction
        total = sum(names.values())
        assert total >= last, f"samples went from {last} to {total}"
        # a half-applied rename would show a third name: A, B and C at once
        assert len(names) <= 2 and len(pooled) <= 2, (names, list(pooled))
        assert max(names.values(), default=0) - min(names.values(), default=0) <= 1, names
        last, reads = total, reads + 1
        if total == 40 and open(sys.argv[2]).read() == "done":
            break
    print(reads, last, flush=True)
""")


def test_readers_during_writes(tmp_path):
    """Two reader processes poll while a writer adds and renames: no error, no 'database is locked',
    and every read sees whole transactions."""
    path, flag = tmp_path / "v.sqlite", tmp_path / "flag"
    flag.write_text("")
    VoiceLibrary(path, create=True).close()
    readers = [subprocess.Popen([sys.executable, "-c", _READER, str(path), str(flag)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    writer = subprocess.run([sys.executable, "-c", _WRITER, str(path)], capture_output=True, text=True, env=ENV,
                            timeout=120)
    flag.write_text("done")
    assert writer.returncode == 0, writer.stderr
    for reader in readers:
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        reads, last = map(int, out.split())
        assert reads > 1 and last == 40
    with VoiceLibrary(path) as library:
        assert {e.name: e.samples for e in library.entries()} == {"A": 20, "B": 20}


_KILLED = textwrap.dedent("""
    import sys, time, numpy as np
    from toolkit.transcript import VoicePrint
    from toolkit.voice_library import VoiceLibrary
    library = VoiceLibrary(sys.argv[1], create=True)
    e = np.ones(256, dtype=np.float32) / 16
    if sys.argv[2] == "mid-transaction":
        with library._transaction() as db:  # a change in flight, as add() makes one
            db.execute("DELETE FROM samples")
            db.execute("INSERT INTO samples (name, encoder, embedding, seconds, source, added) "
                       "VALUES ('Ghost', 'ge2e', ?, 1.0, 'x', 'now')", (e.tobytes(),))
            print("inside", flush=True)
            time.sleep(60)
    else:
        print("inside", flush=True)
        while True:
            library.add("Busy", VoicePrint(e, 1.0, "ge2e"), "loop")
""")


@pytest.mark.parametrize("when", ["mid-transaction", "adding in a loop"])
def test_killed_writer_leaves_a_consistent_library(tmp_path, when):
    path = tmp_path / "v.sqlite"
    with VoiceLibrary(path, create=True) as library:
        library.add("Rasim", voice(1), "a.json#SPEAKER_00")
    writer = subprocess.Popen([sys.executable, "-c", _KILLED, str(path), when], stdout=subprocess.PIPE, text=True,
                              env=ENV)
    assert writer.stdout.readline().strip() == "inside"
    time.sleep(0.3)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()

    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with VoiceLibrary(path) as library:
        names = {e.name: e.samples for e in library.entries()}
        assert names["Rasim"] == 1 and "Ghost" not in names  # the uncommitted change is gone, the rest intact
        for sample in library.samples():
            assert sample.print.embedding.shape == (256,)
        library.add("Elvin", voice(2), "b.json#SPEAKER_01")  # no lock left behind
        assert "Elvin" in library.voices("ge2e")
