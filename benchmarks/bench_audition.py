"""Audition latency: from the key press (``Auditioner.play``) to the first audio callback that
outputs the sound's samples (``Engine.first_output_time``).

The issue asks for at most 150 ms for a cached sound. Dev-set loops (labels task "bpm", real
drum loops) whose tempo can reach a 140 BPM song within the 0.8-1.25 stretch (or at half/double
time), so every one is really stretched. 50 trials each:

1. prepared: the sound was prepared in the background (the cursor rested on it) and is in the
   auditioner's memory: the key press only hands a buffer to the engine;
2. disk-cached: not in memory, but in the stretch cache on disk (a sound auditioned or used in a
   song in an earlier session): read the unit, assemble, play;
3. uncached: never stretched: decode, stretch with Rubber Band, then play (the worst case of a
   key press on a sound the worker has not reached yet).

Peer in the same run: ``sounddevice.play(y, sr)`` of the same (prepared) buffers, timed from the
call to its first callback (sounddevice's own playback helper opens a stream per call).

    python benchmarks/bench_audition.py [--trials 50] [--bpm 140]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import labels, machine, write_result  # noqa: E402


def _items(bpm: float, n: int, seed: int) -> list[SimpleNamespace]:
    import soundfile as sf

    from loopmind.index.search import stretch_ratio

    rows = [r for r in labels("bpm") if r["kind"] == "loop"]
    rows = [r for r in rows if (s := stretch_ratio(float(r["truth"]), bpm)) is not None
            and abs(s - 1.0) > 0.005]
    random.Random(seed).shuffle(rows)
    out = []
    for r in rows[:n]:
        info = sf.info(r["abspath"])
        out.append(SimpleNamespace(path=r["abspath"], start_s=0.0,
                                   end_s=info.frames / info.samplerate, kind="loop",
                                   role="drumloop", bpm=float(r["truth"]), key=None,
                                   bars=float(r["bars"])))
    if len(out) < n:
        raise SystemExit(f"only {len(out)} dev-set loops can reach {bpm} BPM; need {n}")
    return out


def _wait(get, timeout: float = 10.0) -> float:
    end = time.perf_counter() + timeout
    while (t := get()) is None:
        if time.perf_counter() > end:
            raise SystemExit("no output within 10 s")
        time.sleep(0.0002)
    return t


def _stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (f"{np.percentile(a, 50):.1f} | {np.percentile(a, 95):.1f} | {a.max():.1f} | "
            f"{a.mean():.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--bpm", type=float, default=140.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "audition.md"))
    args = ap.parse_args()

    from loopmind.generate.render import StretchCache
    from loopmind.player.audition import AUDITION_VOICE, Auditioner
    from loopmind.player.engine import Engine

    rng = random.Random(args.seed)
    items = _items(args.bpm, 2 * args.trials + 1, args.seed)
    warm, prepared_items, cold_items = items[0], items[1:args.trials + 1], items[args.trials + 1:]
    song = dict(song_bpm=args.bpm, song_key="F minor")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        engine = Engine.open(sr=44100, blocksize=512)
        open_s = time.perf_counter() - t
        if not engine.available:
            raise SystemExit(f"{engine.error}: the benchmark needs an output (an ALSA null "
                             "device will do, see .ci/asoundrc)")
        aud = Auditioner(engine, cache=StretchCache(Path(tmp) / "cache"), sr=44100,
                         memory_items=4 * args.trials)

        def press(item) -> float:
            """ms from the key press to the first callback carrying the sound."""
            engine.stop(AUDITION_VOICE)
            time.sleep(rng.uniform(0.02, 0.05))  # the press lands anywhere in a block
            t0 = time.perf_counter()
            aud.play(item, **song)
            return (_wait(lambda: engine.first_output_time(AUDITION_VOICE)) - t0) * 1000

        # the first press of a session also imports the stretcher and calibrates it
        first_ms = press(warm)

        prepared_ms, buffers = [], []
        for item in prepared_items:
            aud.prepare(item, **song)
            aud.wait_idle()
            prepared_ms.append(press(item))
            buffers.append(aud._recall(aud._plan(item, song["song_bpm"], song["song_key"])))

        uncached_ms = [press(item) for item in cold_items]
        aud.clear_memory()
        disk_ms = [press(item) for item in cold_items]
        aud.close()
        engine.stop()
        info = (f"sounddevice OutputStream, 44100 Hz, blocksize {engine.blocksize} "
                f"({engine.blocksize / 44.1:.1f} ms), latency \"high\" = "
                f"{engine.latency_s * 1000:.1f} ms reported by the stream, device "
                f"'{engine.device_name}'" + (" (no clock of its own: paced by the engine)"
                                            if engine.paced else ""))
        engine_block_ms = engine.blocksize / 44.1
        engine.close()

    # the peer: sounddevice.play, timed to its first callback that writes the buffer
    import sounddevice as sd

    first: list[float] = []
    real_write = sd._CallbackContext.write_outdata

    def timed_write(self, outdata):
        if not first:
            first.append(time.perf_counter())
        return real_write(self, outdata)

    sd._CallbackContext.write_outdata = timed_write
    peer_ms = []
    try:
        for y in buffers:
            first.clear()
            time.sleep(rng.uniform(0.02, 0.05))
            t0 = time.perf_counter()
            sd.play(np.ascontiguousarray(y.T), 44100)
            peer_ms.append((_wait(lambda: first[0] if first else None) - t0) * 1000)
            sd.stop()
    finally:
        sd._CallbackContext.write_outdata = real_write

    n = args.trials
    text = f"""# Audition latency

Machine: {machine()}.
Output: {info}. Engine.open took {open_s * 1000:.0f} ms.
Sounds: {n} + {n} dev-set drum loops (labels task "bpm", 1-4 bars) that reach a {args.bpm:g} BPM
song within the 0.8-1.25 stretch (or at half/double time), each really stretched (Rubber Band R2
through pedalboard).

Time from `Auditioner.play(...)` (the key press) to the start of the first audio callback that
outputs the sound's samples, in ms. What is heard comes one output latency later on a real
device.

| case | trials | p50 | p95 | max | mean |
|---|---|---|---|---|---|
| prepared (in memory: the target case) | {n} | {_stats(prepared_ms)} |
| disk-cached (stretch cache, not in memory) | {n} | {_stats(disk_ms)} |
| uncached (decode + stretch at the key press) | {n} | {_stats(uncached_ms)} |
| peer: `sounddevice.play(y, sr)` of the prepared buffers | {n} | {_stats(peer_ms)} |

First press of the session, right after the `Auditioner` is made (an uncached loop, while its
worker is still importing search, render and pedalboard in the background): {first_ms:.0f} ms.

Reading: a prepared sound waits only for the running stream's next callback (uniform over one
{engine_block_ms:.1f} ms block, plus the GIL). `sounddevice.play` opens a new stream per call, so
its first callback comes as soon as the stream starts; on this clockless null device opening is
nearly free, which makes the peer look fast here; on a real device the open adds the device's
start-up time, and a second `play` cuts the first (one sound at a time, no mixing, no
playhead).

Target: at most 150 ms for a cached sound: p95 {np.percentile(prepared_ms, 95):.1f} ms prepared,
{np.percentile(disk_ms, 95):.1f} ms from the disk cache.
"""
    write_result(args.out, text)


if __name__ == "__main__":
    main()
