"""Musical key (tonic and mode) of a segment, with a confidence, or no key for unpitched audio.

Method (all numpy/scipy, about 1 ms per second of audio at 22.05 kHz):

1. **A long-window spectrum of the low band.** The signal is decimated to about 5.5 kHz
   (``resample_poly``; the fundamentals and first partials of nearly all musical notes lie below
   2.1 kHz) and analysed with a 2048-point Hann STFT: a 0.37 s window with 2.7 Hz bins, four
   times finer than the shared 2048-point STFT at 22.05 kHz, which cannot separate semitones
   below about 200 Hz where bass notes live.
2. **Spectral peaks.** Local maxima that stand at least 10 dB above the mean power 3-12 bins
   away (outside the Hann main lobe) and within 60 dB of the frame's strongest bin; frequency
   and amplitude are refined by parabolic interpolation on the log magnitude. White noise
   yields such a peak about once per 20,000 bins, a sinusoid always does.
3. **Tuning.** The amplitude-weighted circular mean of the peaks' deviation from the 12-TET grid
   (peaks above 80 Hz, whose frequency is precise to a few cents) gives the reference offset,
   so a band tuned to 432 Hz or a pitched-down sample still lands on the right semitones.
4. **Note activations.** Peak amplitudes are binned into a semitone spectrum (E1..C7) and
   explained as a non-negative sum of harmonic note templates (partial ``h`` has amplitude
   ``0.6**(h-1)``, 8 partials; the fixed-dictionary non-negative least squares of Mauch &
   Dixon's NNLS chroma, solved with multiplicative updates). This removes most of the energy
   that partials put on the fifth (3rd harmonic) and the major third (5th harmonic) of every
   note: without it a minor chord looks like its dominant, and minor keys are answered as the
   dominant or relative major. Activations folded to pitch classes give the chroma.
5. **Key model.** The chroma is correlated (Krumhansl-Schmuckler) with the 24 rotations of a
   major and a minor profile, each the average of Temperley's (Kostka-Payne corpus, Music and
   Probability 2007) and Albrecht & Shanahan's (Music Perception 31(1), 2013) profiles, each
   normalized to sum 1. Temperley's minor profile weights the raised leading tone (harmonic
   minor, where V is a major chord) 2.5x above the flat seventh; Albrecht & Shanahan's weights
   the two about equally (0.052 vs 0.061), as the natural-minor (aeolian) loops of pop and
   electronic music need. The average keeps both kinds of minor recognizable; on the dev
   chorales it also scores above either profile alone (benchmarks/results/key.md).
6. **Confidence.** The softmax of the 24 correlations with temperature ``_SOFTMAX_T`` = 0.05
   (near the log-loss optimum on the dev chorales, on the under-confident side because loops
   are harder than chorales), times a tonalness factor ``sqrt(min(1, R / 0.6) * clip((C - 0.4)
   / 0.3, 0, 1))`` (R, C below) that is 1 for clean pitched stems and smaller for drum-heavy
   mixes and borderline material, times ``clip((n - 1) / 2, 0, 1)`` where n is the effective
   number of pitch classes in the chroma: a single note or a power chord fits several keys.
   When fewer than 2 effective pitch classes sound (a one-shot note), the key is named after
   that note (major or minor by the better-scoring profile), as sample packs label one-shots.

Pitchedness gate (key ``None``, confidence 0). Two measures:

* **tonal energy ratio** R: the fraction of the signal's energy above 40 Hz that sits in the
  picked spectral peaks of the 40-2100 Hz band. Noise, hats, snares, claps and clicks put their
  energy in broad bands or above 2 kHz (R < 0.1); sustained notes and chords put 60-99 % of it
  in peaks.
* **pitch coherence** C: the length of the amplitude-weighted mean phasor ``exp(2 pi i midi)``
  of the peaks above 80 Hz, i.e. how well they agree with one 12-tone grid (whatever its
  reference). Notes of a tuned instrument and their harmonics score 0.8-1; inharmonic modes
  (cymbals, bells, metal percussion) and gliding pitches (toms, most kicks) spread over the
  grid (0.2-0.5).

A segment gets a key when it is not silent (RMS >= -70 dBFS) and either R >= 0.3 and C >= 0.4
(a pitched stem), or R >= 0.1, C >= 0.6 and the chroma spreads over at least 4 pitch classes
(``exp`` of its entropy): a full mix where drums carry most of the energy but the rest is
well-tuned harmony, which a single tuned drum hit (one pitch class) is not.

The thresholds were set once on the role rows of the dev set (drum one-shots versus pitched
one-shots and loops) and on chorale + drum-loop mixes made in the benchmark, as round values in
the flat part of the trade-off, not per file; ``benchmarks/bench_key.py`` reports the rates
per class. Pitched percussion (tabla, cowbell) and long tuned kicks can pass: such segments get
a key with a low confidence, and callers that know the role is a drum should ignore it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from loopmind.library.analysis.features import Spectrogram, periodic_hann

TONICS: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
KEYS: list[str] = [f"{t} major" for t in TONICS] + [f"{t} minor" for t in TONICS]

TONAL_RATIO_MIN = 0.3          # pitched stem: R >= 0.3 and C >= 0.4
PITCH_COHERENCE_MIN = 0.4
MIX_TONAL_RATIO_MIN = 0.1      # full mix: R >= 0.1, C >= 0.6 and >= 4 pitch classes
MIX_PITCH_COHERENCE_MIN = 0.6
MIX_PITCH_CLASSES_MIN = 4.0
SILENCE_DBFS = -70.0

_LOW_SR = 5512.5          # analysis rate of the decimated signal (Hz)
_N_FFT = 2048             # 0.37 s at 5.5 kHz: 2.7 Hz bins
_HOP = 512                # 93 ms
_FMIN_HZ, _FMAX_HZ = 40.0, 2100.0
_PEAK_PROMINENCE_DB = 10.0
_PEAK_RANGE_DB = 60.0
_TUNING_FMIN_HZ = 80.0    # below this a 2.7 Hz bin spans > 50 cents: too coarse for tuning
_MIDI_LO, _MIDI_HI = 28, 96   # semitone bins observed: E1 (41 Hz) .. C7 (2093 Hz)
_PARTIAL_DECAY = 0.6      # amplitude of partial h relative to h-1 in the note templates
_N_PARTIALS = 8
_NNLS_ITERATIONS = 60
_SOFTMAX_T = 0.05         # correlation units; see "Confidence" above
_FULLY_TONAL_RATIO = 0.6  # R at which the tonalness factor of the confidence reaches 1
_SINGLE_PITCH_CLASSES = 2.0  # below this many effective pitch classes the tonic is the note
_BLOCK_FRAMES = 256       # frames per block in peak picking (bounds memory on long input)

# Temperley (2007), Kostka-Payne corpus: proportion of segments containing each pitch class
_TEMPERLEY_MAJOR = (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366,
                    0.057, 0.400)
_TEMPERLEY_MINOR = (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067,
                    0.133, 0.330)
# Albrecht & Shanahan (2013): pitch-class distributions of a corpus of common-practice pieces
_AS_MAJOR = (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008,
             0.081)
_AS_MINOR = (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061,
             0.052)


@dataclass
class KeyEstimate:
    """The key of one segment.

    Attributes:
        key: canonical name such as ``"F minor"`` or ``"Bb major"`` (one of ``KEYS``), or
            ``None`` for unpitched or silent audio.
        confidence: in [0, 1]; 0 when ``key`` is None.
    """

    key: str | None
    confidence: float


@dataclass
class KeyAnalysis:
    """Everything ``estimate_key`` measured, for callers that need more than the answer.

    Attributes:
        chroma: note energy per pitch class C..B after harmonic removal, shape (12,), sums to
            1 (zeros when nothing was found).
        scores: correlation of ``chroma`` with each key profile, shape (24,), in ``KEYS``
            order.
        tuning_cents: offset of the audio's tuning from A = 440 Hz, in cents (-50..50).
        tonal_ratio: fraction of the energy above 40 Hz in spectral peaks below 2.1 kHz.
        pitch_coherence: agreement of the peaks with one 12-tone grid, in [0, 1].
        n_pitch_classes: effective number of pitch classes in ``chroma`` (exp of its entropy).
        pitched: whether the gate let the segment through.
    """

    chroma: np.ndarray
    scores: np.ndarray
    tuning_cents: float
    tonal_ratio: float
    pitch_coherence: float
    n_pitch_classes: float
    pitched: bool

    def estimate(self) -> KeyEstimate:
        """The best key and its confidence (``None`` if not pitched)."""
        if not self.pitched or not np.any(self.chroma > 0):
            return KeyEstimate(None, 0.0)
        z = (self.scores - self.scores.max()) / _SOFTMAX_T
        posterior = np.exp(z) / np.exp(z).sum()
        best = int(np.argmax(self.scores))
        if self.n_pitch_classes < _SINGLE_PITCH_CLASSES:
            # one note (a bass or 808 one-shot): profiles would rank the keys it is the
            # dominant of as high as its own; name the note itself, as sample packs do
            tonic = int(np.argmax(self.chroma))
            best = tonic if self.scores[tonic] >= self.scores[tonic + 12] else tonic + 12
        tonal = min(1.0, self.tonal_ratio / _FULLY_TONAL_RATIO)
        coherent = np.clip((self.pitch_coherence - PITCH_COHERENCE_MIN) / 0.3, 0.0, 1.0)
        # one or two pitch classes (a single note, a power chord) fit several keys equally
        spread = np.clip((self.n_pitch_classes - 1.0) / 2.0, 0.0, 1.0)
        confidence = float(posterior[best]) * float(np.sqrt(tonal * coherent)) * float(spread)
        return KeyEstimate(KEYS[best], float(np.clip(confidence, 0.0, 1.0)))


def estimate_key(y: np.ndarray, *, sr: int, spec: Spectrogram | None = None) -> KeyEstimate:
    """Key and mode of a segment, or ``None`` for drums, noise, clicks and silence.

    Args:
        y: mono signal, shape (n,), float in [-1, 1].
        sr: sample rate in Hz.
        spec: the shared ``Spectrogram`` of ``y``. Accepted for the common analyzer
            signature and not needed: the key needs 4x finer frequency resolution than the
            shared STFT and takes its own long-window transform of ``y`` (see the module doc).

    Returns:
        ``KeyEstimate`` with a canonical key name (see ``KEYS``) and a confidence in [0, 1].

    Raises:
        ValueError: ``y`` is not one-dimensional.
    """
    return analyze_key(y, sr=sr, spec=spec).estimate()


def analyze_key(y: np.ndarray, *, sr: int, spec: Spectrogram | None = None) -> KeyAnalysis:
    """Chroma, key-profile scores and pitchedness measures of a segment (see the module doc).

    Args:
        y: mono signal, shape (n,), float in [-1, 1].
        sr: sample rate in Hz.
        spec: the shared ``Spectrogram`` of ``y``, or None (not needed, see ``estimate_key``).

    Returns:
        ``KeyAnalysis``; its ``estimate()`` is what ``estimate_key`` returns.

    Raises:
        ValueError: ``y`` is not one-dimensional.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"y must be mono, shape (n,); got shape {y.shape}")
    empty = KeyAnalysis(np.zeros(12), np.zeros(24), 0.0, 0.0, 0.0, 0.0, False)
    if y.size == 0 or not np.all(np.isfinite(y)):
        return empty
    if 10.0 * np.log10(float(np.dot(y, y)) / len(y) + 1e-20) < SILENCE_DBFS:
        return empty

    y_low, sr_low = _decimate(y, sr)
    frames, freqs, amps, tonal_power, sub_power = _spectral_peaks(y_low, sr_low)
    if freqs.size == 0:
        return empty

    # tonal energy ratio over the whole band above 40 Hz: the decimated STFT sees only
    # < 2.75 kHz, so compare its peak power with the mean square of y itself (Parseval: a Hann
    # window at hop n_fft/4 sums to 1.5 in power, and the one-sided spectrum counts half)
    to_mean_square = 2.0 / (_N_FFT * 1.5 * len(y_low))
    mean = float(y.mean(dtype=np.float64))
    variance = float(np.dot(y, y)) / len(y) - mean * mean  # no float64 copy of a long y
    full = variance - to_mean_square * float(sub_power.sum())
    tonal_ratio = min(1.0, to_mean_square * float(tonal_power.sum()) / full) if full > 0 else 0.0
    midi = 69.0 + 12.0 * np.log2(freqs / 440.0)
    precise = freqs >= _TUNING_FMIN_HZ
    phasor = np.sum(amps[precise] * np.exp(2j * np.pi * midi[precise]))
    weight = float(amps[precise].sum())
    coherence = float(abs(phasor) / weight) if weight > 0 else 0.0
    tuning = float(np.angle(phasor) / (2 * np.pi)) if weight > 0 else 0.0  # semitones

    n_frames = int(frames.max()) + 1
    spectrum = _semitone_spectrum(frames, midi - tuning, amps, n_frames)
    activations = _note_activations(spectrum)
    notes = np.arange(_MIDI_LO, _MIDI_HI + 1)
    chroma = np.bincount(notes % 12, weights=activations.sum(axis=1), minlength=12)
    total = chroma.sum()
    chroma = chroma / total if total > 0 else chroma
    nonzero = chroma[chroma > 0]
    n_pitch_classes = float(np.exp(-np.sum(nonzero * np.log(nonzero))))
    pitched = ((tonal_ratio >= TONAL_RATIO_MIN and coherence >= PITCH_COHERENCE_MIN)
               or (tonal_ratio >= MIX_TONAL_RATIO_MIN and coherence >= MIX_PITCH_COHERENCE_MIN
                   and n_pitch_classes >= MIX_PITCH_CLASSES_MIN))
    return KeyAnalysis(chroma=chroma, scores=key_scores(chroma), tuning_cents=100.0 * tuning,
                       tonal_ratio=tonal_ratio, pitch_coherence=coherence,
                       n_pitch_classes=n_pitch_classes, pitched=pitched)


def key_scores(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlation of a 12-bin chroma (C..B) with each key profile.

    Returns:
        shape (24,), in ``KEYS`` order (12 majors from C, then 12 minors from C).
    """
    c = np.asarray(chroma, dtype=np.float64)
    c = c - c.mean()
    norm = np.linalg.norm(c)
    if norm == 0:
        return np.zeros(24)
    return _profile_matrix() @ (c / norm)


# --- key names -------------------------------------------------------------------------------

_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(
    r"^\s*([a-g])\s*(#|♯|b|♭|-sharp|-flat|\s+sharp|\s+flat|sharp|flat)?"
    r"[\s_\-:]*(.*?)\s*$", re.IGNORECASE)
_MAJOR_WORDS = {"", "maj", "major", "dur", "ionian", "ma"}
_MINOR_WORDS = {"min", "minor", "moll", "aeolian", "mi"}


def parse_key(text: str | None) -> str | None:
    """Normalize a key spelling to a canonical name in ``KEYS``, or None if it is not a key.

    Accepts ``"Fm"``, ``"F#min"``, ``"Gb major"`` (-> ``"F# major"``), ``"f minor"``, ``"A"``
    (-> ``"A major"``), ``"Bbm"``, ``"C# Minor"``, ``"Eb-maj"``, ``"F sharp minor"``,
    ``"A♭ major"``. A bare ``m`` means minor and ``M`` major; other mode words are
    case-insensitive.
    """
    if not isinstance(text, str):
        return None
    m = _KEY_RE.match(text)
    if not m:
        return None
    letter, mode = m.group(1).upper(), m.group(3)
    accidental = (m.group(2) or "").strip(" -").lower()
    pc = _PITCH_CLASS[letter]
    if accidental in ("#", "♯", "sharp"):
        pc += 1
    elif accidental in ("b", "♭", "flat"):
        pc -= 1
    if mode == "m":
        minor = True
    elif mode == "M":
        minor = False
    elif mode.lower().rstrip(".") in _MAJOR_WORDS:
        minor = False
    elif mode.lower().rstrip(".") in _MINOR_WORDS:
        minor = True
    else:
        return None
    return KEYS[pc % 12 + (12 if minor else 0)]


def _key_index(key: str) -> int:
    canonical = parse_key(key)
    if canonical is None:
        raise ValueError(f"not a key: {key!r}")
    return KEYS.index(canonical)


def relative(key: str) -> str:
    """The relative major of a minor key, or the relative minor of a major key.

    Raises:
        ValueError: ``key`` is not a key name ``parse_key`` understands.
    """
    i = _key_index(key)
    tonic, minor = i % 12, i >= 12
    return KEYS[(tonic + 3) % 12] if minor else KEYS[(tonic + 9) % 12 + 12]


def parallel(key: str) -> str:
    """The parallel key: same tonic, other mode ("F minor" -> "F major").

    Raises:
        ValueError: ``key`` is not a key name ``parse_key`` understands.
    """
    return KEYS[(_key_index(key) + 12) % 24]


def fifth_neighbors(key: str) -> tuple[str, str]:
    """The keys a fifth above (dominant) and a fifth below (subdominant), same mode.

    Raises:
        ValueError: ``key`` is not a key name ``parse_key`` understands.
    """
    i = _key_index(key)
    tonic, base = i % 12, 12 * (i // 12)
    return KEYS[base + (tonic + 7) % 12], KEYS[base + (tonic + 5) % 12]


# --- signal processing -----------------------------------------------------------------------

def _decimate(y: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Low-pass and decimate to about ``_LOW_SR`` (integer factor)."""
    q = max(1, int(round(sr / _LOW_SR)))
    if q == 1:
        return y, float(sr)
    from loopmind.library.audio import resample

    return resample(y, up=1, down=q), sr / q


def _spectral_peaks(y: np.ndarray, sr: float):
    """Prominent spectral peaks of the long-window STFT.

    Returns:
        frames (int, (p,)), freqs in Hz (p,), amplitudes (p,) of every peak, and per frame the
        power in the peaks (+-1 bin) and below 40 Hz (DC excluded), shapes (n_frames,).
    """
    from scipy import fft

    n_fft, hop = _N_FFT, _HOP
    pad = n_fft // 2
    yp = np.pad(y, (pad, pad))
    if len(yp) < n_fft:
        yp = np.pad(yp, (0, n_fft - len(yp)))
    all_frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft)[::hop]
    window = periodic_hann(n_fft)
    k0 = max(int(np.ceil(_FMIN_HZ * n_fft / sr)), 13)
    k1 = min(int(_FMAX_HZ * n_fft / sr) + 1, n_fft // 2 + 1 - 13)
    ks = np.arange(k0, k1)
    prominence = 10.0 ** (_PEAK_PROMINENCE_DB / 10.0)
    floor_rel = 10.0 ** (-_PEAK_RANGE_DB / 10.0)
    out_t, out_f, out_a, tonal, sub = [], [], [], [], []
    for start in range(0, len(all_frames), _BLOCK_FRAMES):
        block = all_frames[start:start + _BLOCK_FRAMES]
        mag = np.abs(fft.rfft(block * window, axis=1, overwrite_x=True))  # (frames, bins)
        power = mag * mag
        csum = np.concatenate([np.zeros((len(block), 1)), np.cumsum(power, axis=1)], axis=1)
        # mean power 3..12 bins away on both sides: outside the Hann main lobe (+-2 bins)
        floor = ((csum[:, ks + 13] - csum[:, ks - 12]) - (csum[:, ks + 3] - csum[:, ks - 2])) / 20.0
        mid = power[:, ks]
        in_band = power[:, k0:k1]
        is_peak = ((mid > power[:, ks - 1]) & (mid >= power[:, ks + 1])
                   & (mid > prominence * floor)
                   & (mid > floor_rel * in_band.max(axis=1, keepdims=True)))
        t, j = np.nonzero(is_peak)
        k = ks[j]
        # parabolic interpolation on the log magnitude (Hann: error < 1 % of a bin)
        la, lb, lc = (np.log(mag[t, k + d] + 1e-20) for d in (-1, 0, 1))
        den = la - 2.0 * lb + lc
        delta = np.clip(0.5 * (la - lc) / np.where(den < 0, den, -1.0), -0.5, 0.5)
        out_t.append(t + start)
        out_f.append((k + delta) * sr / n_fft)
        out_a.append(np.exp(lb - 0.25 * (la - lc) * delta))
        peak_power = power[t, k - 1] + power[t, k] + power[t, k + 1]
        tonal.append(np.bincount(t, weights=peak_power, minlength=len(block)))
        sub.append(power[:, 1:k0].sum(axis=1))
    return (np.concatenate(out_t), np.concatenate(out_f), np.concatenate(out_a),
            np.concatenate(tonal), np.concatenate(sub))


def _semitone_spectrum(frames: np.ndarray, midi: np.ndarray, amps: np.ndarray,
                       n_frames: int) -> np.ndarray:
    """Peak amplitudes summed per semitone, shape (n_semitones, n_frames)."""
    n_bins = _MIDI_HI - _MIDI_LO + 1
    semitone = np.rint(midi).astype(np.int64) - _MIDI_LO
    ok = (semitone >= 0) & (semitone < n_bins)
    flat = semitone[ok] * n_frames + frames[ok]
    return np.bincount(flat, weights=amps[ok], minlength=n_bins * n_frames).reshape(
        n_bins, n_frames)


@lru_cache(maxsize=1)
def _note_dictionary() -> tuple[np.ndarray, np.ndarray]:
    """Harmonic note templates W (n_semitones, n_notes), columns summing to 1, and W^T W."""
    n = _MIDI_HI - _MIDI_LO + 1
    w = np.zeros((n, n))
    for note in range(n):
        for h in range(1, _N_PARTIALS + 1):
            row = note + int(round(12.0 * np.log2(h)))
            if row < n:
                w[row, note] += _PARTIAL_DECAY ** (h - 1)
    w /= w.sum(axis=0, keepdims=True)
    return w, w.T @ w


def _note_activations(spectrum: np.ndarray) -> np.ndarray:
    """Non-negative note amplitudes explaining a semitone spectrum, shape like ``spectrum``.

    Lee & Seung multiplicative updates for min ||V - W H||^2 with H >= 0 and W fixed. Frames
    are independent, so they are solved in cache-sized blocks, silent frames skipped.
    """
    w, wtw = _note_dictionary()
    out = np.zeros_like(spectrum)
    active = np.flatnonzero(spectrum.sum(axis=0) > 0)
    for start in range(0, active.size, _BLOCK_FRAMES):
        cols = active[start:start + _BLOCK_FRAMES]
        v = spectrum[:, cols]
        wtv = w.T @ v
        h = np.repeat(v.mean(axis=0, keepdims=True), v.shape[0], axis=0)
        for _ in range(_NNLS_ITERATIONS):
            h *= wtv / (wtw @ h + 1e-12)
        out[:, cols] = h
    return out


@lru_cache(maxsize=1)
def _profile_matrix() -> np.ndarray:
    """Zero-mean, unit-norm rotated key profiles, shape (24, 12), in ``KEYS`` order."""
    rows = []
    for temperley, albrecht in ((_TEMPERLEY_MAJOR, _AS_MAJOR), (_TEMPERLEY_MINOR, _AS_MINOR)):
        t, a = np.asarray(temperley), np.asarray(albrecht)
        profile = (t / t.sum() + a / a.sum()) / 2.0
        profile = profile - profile.mean()
        profile /= np.linalg.norm(profile)
        rows.extend(np.roll(profile, tonic) for tonic in range(12))
    return np.array(rows)
