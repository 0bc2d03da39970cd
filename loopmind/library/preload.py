"""What the analysis pool's workers need, imported once by multiprocessing's fork server.

Each ``run_jobs`` pool forks its workers from the fork server; with this module preloaded
there (``pipeline.pool_context``), a worker starts with the analysis modules imported and the
shipped role model and feature constants loaded, instead of spending about half a second on
them before its first file. A long-lived process (the app, the watcher, a benchmark) starts a
pool per scan from the same fork server, so it pays this once.

Importing this module is heavy on purpose: nothing else imports it.
"""

from loopmind.index import dupes, embed  # noqa: F401
from loopmind.library import audio, chop, filemeta, names, pipeline  # noqa: F401
from loopmind.library.analysis import (features, key, loudness, role, segments,  # noqa: F401
                                       tempo, tone)


def _warm() -> None:
    """Load the models and fill the per-process caches (lazily imported scipy parts, FFT
    plans, the filter and resampler matrices of the common rates) on a synthetic sound."""
    import numpy as np

    sr = audio.ANALYSIS_SR
    t = np.arange(2 * sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 220.0 * t) * np.exp(-6.0 * (t % 0.5))).astype(np.float32)
    for native in (44100, 48000):
        loudness.LoudnessMeter(native, 2)
        audio._resampler(native, sr)
    decoded = audio.DecodedAudio(y=y, sr=sr, info=audio.AudioInfo("RAW", "FLOAT", sr, 1, len(y)),
                                 loudness=loudness.measure(y, sr))
    embedder = embed.get_embedder("features")
    segments.analyze_audio(decoded, path="warm-up.raw", embed=embedder.embed,
                           embedder=f"{embedder.name}/{embedder.version}")


try:
    _warm()
except Exception:  # noqa: BLE001 - a broken model is reported by the worker that uses it
    pass
