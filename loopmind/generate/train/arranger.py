"""The learned arranger: which section comes next and which roles play in it.

A song is a sequence of sections. At step t the model reads the previous section (its kind,
its roles as a multi-hot, its length class), how far into the song it is, and the song's
conditioning (genre, mood, tempo), and a GRU carries the history. Three heads:

* next section: softmax over ``SECTION_NAMES`` + "end";
* its length: softmax over ``BAR_CLASSES`` given the next section's kind;
* its roles: 16 sigmoids (``ROLES``) given the next section's kind.

Training (torch) reads imported projects (``loopmind.generate.projects``' normalized
"loopmind.project/1" dicts) and LoopMind arrangements (``arrangement.json``); inference is
numpy only, so ``generate`` never imports torch. ``learned_plan`` is the hook ``arrange.py``
calls: it samples a plan with the song's seeded generator, fits it to the requested length
with ``styles.plan_sections`` and returns None whenever the model is absent, disabled, refused
or produces something unusable, so the genre's rule-based plan is used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopmind.generate.styles import GENRES, MOODS, SECTION_NAMES, SectionPlan
from loopmind.generate.train.common import (ModelError, TrainingDataError, TrainResult,
                                            bootstrap_interval, find_checkpoint,
                                            load_checkpoint)
from loopmind.library.analysis.role import ROLES

log = logging.getLogger(__name__)

NAME = "arranger"
VERSION = 1
END = "end"
OUTPUTS: tuple[str, ...] = (*SECTION_NAMES, END)          # what the section head predicts
INPUTS: tuple[str, ...] = (*SECTION_NAMES, "start")       # what the previous section can be
BAR_CLASSES: tuple[int, ...] = (4, 8, 12, 16, 24, 32)
GENRE_VOCAB: tuple[str, ...] = ("none", *GENRES)
MOOD_VOCAB: tuple[str, ...] = ("none", *MOODS)
HIDDEN = 48
ROLE_HIDDEN = 32
MIN_PROJECTS = 8
MAX_SECTIONS = 24
EPOCHS = 100
# total weight of the rule-based plans against the real projects' (a small grid of 0.3, 1 and
# 3 times, at 80-300 epochs, was compared on the leave-one-project-out folds: see the card)
AUGMENT_RATIO = 3.0
# a section's energy when the genre's plan has no section of that name
_KIND_ENERGY = {"intro": 0.3, "verse": 0.6, "pre-chorus": 0.7, "hook": 0.9, "drop": 0.95,
                "break": 0.4, "bridge": 0.5, "outro": 0.3}
# section names in other tools' words (lower case, letters only) -> ours
_SECTION_ALIASES = {
    "intro": "intro", "introduction": "intro", "verse": "verse", "prechorus": "pre-chorus",
    "build": "pre-chorus", "buildup": "pre-chorus", "riser": "pre-chorus", "lift": "pre-chorus",
    "hook": "hook", "chorus": "hook", "refrain": "hook", "drop": "drop", "break": "break",
    "breakdown": "break", "bridge": "bridge", "interlude": "bridge", "middle": "bridge",
    "middleeight": "bridge", "outro": "outro", "ending": "outro", "coda": "outro",
}


def input_dim() -> int:
    return len(INPUTS) + len(ROLES) + len(BAR_CLASSES) + 1 + len(GENRE_VOCAB) + len(MOOD_VOCAB) + 1


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every array of the checkpoint and its shape (for the vocabularies of this code)."""
    d, h, s = input_dim(), HIDDEN, len(OUTPUTS)
    return {"gru.weight_ih": (3 * h, d), "gru.weight_hh": (3 * h, h), "gru.bias_ih": (3 * h,),
            "gru.bias_hh": (3 * h,), "section.weight": (s, h), "section.bias": (s,),
            "bars.weight": (len(BAR_CLASSES), h + s), "bars.bias": (len(BAR_CLASSES),),
            "roles1.weight": (ROLE_HIDDEN, h + s), "roles1.bias": (ROLE_HIDDEN,),
            "roles2.weight": (len(ROLES), ROLE_HIDDEN), "roles2.bias": (len(ROLES),)}


def _vocab() -> dict:
    return {"outputs": list(OUTPUTS), "inputs": list(INPUTS), "roles": list(ROLES),
            "bars": list(BAR_CLASSES), "genres": list(GENRE_VOCAB), "moods": list(MOOD_VOCAB)}


# -- data ---------------------------------------------------------------------------------------

@dataclass
class Example:
    """One song as the arranger sees it.

    Attributes:
        sections: (name, bars, roles) in order; names from ``SECTION_NAMES``.
        genre: a name of ``GENRES`` or None; mood: a name of ``MOODS`` or None.
        bpm: tempo; source: where it came from (a project file, "rules:<genre>").
        weight: its weight in the loss; inferred: the sections were inferred by the importer.
    """

    sections: list[tuple[str, int, frozenset[str]]]
    genre: str | None = None
    mood: str | None = None
    bpm: float = 120.0
    source: str = ""
    weight: float = 1.0
    inferred: bool = False

    @property
    def bars(self) -> int:
        return sum(b for _, b, _ in self.sections)


def section_name(raw: str | None) -> str | None:
    """Our section name for another tool's ("Chorus 2" -> hook), None when unknown."""
    if not raw:
        return None
    words = "".join(ch for ch in str(raw).lower() if ch.isalpha() or ch == " ").split()
    for n in (len(words), 1):
        key = "".join(words[:n])
        if key in _SECTION_ALIASES:
            return _SECTION_ALIASES[key]
    return None


def _genre_name(raw) -> str | None:
    from loopmind.generate.styles import find_genre

    if not raw:
        return None
    g = find_genre(str(raw))
    return g.name if g is not None and g.name in GENRES else None


def _mood_name(raw) -> str | None:
    from loopmind.generate.styles import find_mood

    if isinstance(raw, (list, tuple)):
        raw = raw[0] if raw else None
    if not raw:
        return None
    m = find_mood(str(raw))
    return m.name if m is not None else None


def example_from_dict(d: dict, source: str = "") -> Example | None:
    """An example from a normalized project dict ("loopmind.project/1") or a LoopMind
    arrangement dict; None when it has fewer than two usable sections."""
    sections = []
    inferred = False
    for s in d.get("sections") or []:
        name = section_name(s.get("name"))
        bars = int(round(float(s.get("bars") or 0)))
        if name is None or bars <= 0:
            continue
        roles = frozenset(r for r in (s.get("roles") or []) if r in ROLES)
        inferred = inferred or bool(s.get("inferred"))
        if sections and sections[-1][0] == name:
            # one section in several parts (an importer splits where the playing tracks
            # change): LoopMind's plans name a section once, with every role in it
            sections[-1] = (name, sections[-1][1] + bars, sections[-1][2] | roles)
        else:
            sections.append((name, bars, roles))
    if len(sections) < 2:
        return None
    bpm = d.get("bpm")
    return Example(sections=sections[:MAX_SECTIONS], genre=_genre_name(d.get("genre")),
                   mood=_mood_name(d.get("mood") or d.get("moods")),
                   bpm=float(bpm) if bpm else 120.0, source=source, inferred=inferred)


PROJECT_SUFFIXES = (".mmp", ".mmpz", ".flp", ".json")


def load_examples(folder: os.PathLike | str, *, warnings: list[str] | None = None
                  ) -> list[Example]:
    """Examples from every project and arrangement file under ``folder`` (recursively).

    Project files (.flp, .mmp, .mmpz, arrangement JSON) go through
    ``loopmind.generate.projects.load_project``; LoopMind ``arrangement.json`` files and
    already normalized project JSON are read directly. A file that cannot be read is
    reported in ``warnings`` and skipped.
    """
    warnings = warnings if warnings is not None else []
    folder = Path(folder)
    paths = [folder] if folder.is_file() else sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in PROJECT_SUFFIXES and p.is_file())
    out = []
    for p in paths:
        try:
            d = read_project(p)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.append(f"{p.name}: {reason}")
            continue
        if d is None:
            continue
        ex = example_from_dict(d, source=str(p.relative_to(folder) if folder.is_dir() else p.name))
        if ex is None:
            warnings.append(f"{p.name}: fewer than two sections with known names")
        else:
            out.append(ex)
    return out


def read_project(path: Path) -> dict | None:
    """A project file as a normalized dict (None for JSON that is no project)."""
    if path.suffix.lower() == ".json":
        d = json.loads(path.read_text())
        if not isinstance(d, dict):
            return None
        if d.get("format", "").startswith(("loopmind.arrangement", "loopmind.project")) \
                or ("sections" in d and "tracks" in d):
            return d
        if "structure" not in d:
            return None
    from loopmind.generate.projects import load_project

    return load_project(path).to_dict()


def rule_examples(*, seed: int = 0, per_genre: int = 24) -> list[Example]:
    """LoopMind's own rule-based plans (``styles.plan_sections``) for every genre, with moods,
    lengths and tempos drawn from the genre's ranges: the augmentation data."""
    from loopmind.generate.styles import plan_sections

    rng = np.random.default_rng(seed)
    moods = [None, *MOODS]
    out = []
    for g in GENRES.values():
        for i in range(per_genre):
            mood = moods[int(rng.integers(len(moods)))]
            bpm = float(rng.uniform(*g.bpm_range))
            minutes = float(rng.uniform(1.5, 4.5))
            shift = MOODS[mood].energy_shift if mood else 0.0
            plan = plan_sections(g, minutes=minutes, bpm=bpm, rng=rng, energy_shift=shift)
            out.append(Example([(s.name, s.bars, frozenset(s.roles)) for s in plan],
                               genre=g.name, mood=mood, bpm=round(bpm, 1),
                               source=f"rules:{g.name}#{i}"))
    return out


# -- features -----------------------------------------------------------------------------------

def _bar_class(bars: int) -> int:
    return int(np.argmin([abs(bars - b) for b in BAR_CLASSES]))


def _condition(genre: str | None, mood: str | None, bpm: float) -> np.ndarray:
    c = np.zeros(len(GENRE_VOCAB) + len(MOOD_VOCAB) + 1, np.float32)
    c[GENRE_VOCAB.index(genre) if genre in GENRE_VOCAB else 0] = 1.0
    c[len(GENRE_VOCAB) + (MOOD_VOCAB.index(mood) if mood in MOOD_VOCAB else 0)] = 1.0
    c[-1] = (float(bpm) - 120.0) / 40.0
    return c


def _step_input(prev: str, roles, bars: int | None, elapsed: float,
                cond: np.ndarray) -> np.ndarray:
    x = np.zeros(len(INPUTS) + len(ROLES) + len(BAR_CLASSES) + 1, np.float32)
    x[INPUTS.index(prev)] = 1.0
    for r in roles:
        x[len(INPUTS) + ROLES.index(r)] = 1.0
    if bars is not None:
        x[len(INPUTS) + len(ROLES) + _bar_class(bars)] = 1.0
    x[-1] = min(float(elapsed), 1.5)
    return np.concatenate([x, cond])


def encode(ex: Example) -> dict[str, np.ndarray]:
    """Teacher-forced arrays of one example: inputs (T, D) and targets, T = sections + 1."""
    total = max(ex.bars, 1)
    cond = _condition(ex.genre, ex.mood, ex.bpm)
    xs, ys, bars, roles = [], [], [], []
    prev, prev_roles, prev_bars, done = "start", frozenset(), None, 0
    for name, b, rs in ex.sections:
        xs.append(_step_input(prev, prev_roles, prev_bars, done / total, cond))
        ys.append(OUTPUTS.index(name))
        bars.append(_bar_class(b))
        roles.append([1.0 if r in rs else 0.0 for r in ROLES])
        prev, prev_roles, prev_bars, done = name, rs, b, done + b
    xs.append(_step_input(prev, prev_roles, prev_bars, done / total, cond))
    ys.append(OUTPUTS.index(END))
    bars.append(-1)                       # no length or roles after the end
    roles.append([0.0] * len(ROLES))
    return {"x": np.asarray(xs, np.float32), "y": np.asarray(ys, np.int64),
            "bars": np.asarray(bars, np.int64), "roles": np.asarray(roles, np.float32)}


# -- inference (numpy) --------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x, temperature: float = 1.0):
    z = (x - x.max()) / max(temperature, 1e-6)
    e = np.exp(z)
    return e / e.sum()


class ArrangerModel:
    """A loaded arranger (numpy). ``step`` runs one GRU step; the heads read its state."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict | None = None):
        self.w = {k: np.asarray(v, np.float64) for k, v in tensors.items()}
        self.meta = meta or {}

    @classmethod
    def load(cls, path: os.PathLike | str) -> "ArrangerModel":
        """Raises ModelError for a missing, foreign, old or mis-shaped checkpoint."""
        tensors, meta = load_checkpoint(path, model=NAME, version=VERSION,
                                        shapes=expected_shapes())
        if meta.get("vocab") != _vocab():
            raise ModelError(f"{Path(path).name} was trained with other section, role, genre "
                             "or mood names; retrain it with `loopmind train arranger`")
        return cls(tensors, meta)

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """One GRU step (torch's equations): x (D,), h (H,) -> new h (H,)."""
        w = self.w
        gi = w["gru.weight_ih"] @ x + w["gru.bias_ih"]
        gh = w["gru.weight_hh"] @ h + w["gru.bias_hh"]
        H = len(h)
        r = _sigmoid(gi[:H] + gh[:H])
        z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
        return (1.0 - z) * n + z * h

    def section_logits(self, h: np.ndarray) -> np.ndarray:
        return self.w["section.weight"] @ h + self.w["section.bias"]

    def _given(self, h: np.ndarray, section: str) -> np.ndarray:
        s = np.zeros(len(OUTPUTS))
        s[OUTPUTS.index(section)] = 1.0
        return np.concatenate([h, s])

    def bars_logits(self, h: np.ndarray, section: str) -> np.ndarray:
        return self.w["bars.weight"] @ self._given(h, section) + self.w["bars.bias"]

    def role_probs(self, h: np.ndarray, section: str) -> np.ndarray:
        a = np.maximum(self.w["roles1.weight"] @ self._given(h, section) + self.w["roles1.bias"],
                       0.0)
        return _sigmoid(self.w["roles2.weight"] @ a + self.w["roles2.bias"])

    def teacher_forced(self, ex: Example) -> tuple[np.ndarray, np.ndarray]:
        """(section probabilities (T, S), role probabilities given the true section (T-1, R))."""
        arr = encode(ex)
        h = np.zeros(HIDDEN)
        ps, pr = [], []
        for t, x in enumerate(arr["x"]):
            h = self.step(x.astype(np.float64), h)
            ps.append(_softmax(self.section_logits(h)))
            if t < len(ex.sections):
                pr.append(self.role_probs(h, ex.sections[t][0]))
        return np.asarray(ps), np.asarray(pr)

    def sample(self, *, genre: str | None, mood: str | None, bpm: float, target_bars: int,
               rng: np.random.Generator, temperature: float = 0.7
               ) -> list[tuple[str, int, tuple[str, ...]]]:
        """A section sequence: (name, bars, roles). Deterministic for a given ``rng`` state.

        The end may come once at least three sections and 60 % of ``target_bars`` are
        planned, and must come by 140 %; an intro only opens the song.
        """
        cond = _condition(genre, mood, bpm)
        h = np.zeros(HIDDEN)
        prev, prev_roles, prev_bars, done = "start", (), None, 0
        out: list[tuple[str, int, tuple[str, ...]]] = []
        total = max(target_bars, 4)
        for _ in range(MAX_SECTIONS):
            h = self.step(_step_input(prev, prev_roles, prev_bars, done / total, cond)
                          .astype(np.float64), h)
            logits = self.section_logits(h).copy()
            can_end = len(out) >= 3 and done >= 0.6 * total
            if done >= 1.4 * total:
                break
            if not can_end:
                logits[OUTPUTS.index(END)] = -np.inf
            if out:
                logits[OUTPUTS.index("intro")] = -np.inf
            if out and out[-1][0] == "outro":
                break
            p = _softmax(logits, temperature)
            name = OUTPUTS[int(rng.choice(len(OUTPUTS), p=p))]
            if name == END:
                break
            bars = BAR_CLASSES[int(np.argmax(self.bars_logits(h, name)))]
            probs = self.role_probs(h, name)
            roles = tuple(r for r, q in zip(ROLES, probs) if q >= 0.5)
            if not roles:  # a section where nothing plays is not a plan
                roles = tuple(ROLES[i] for i in np.argsort(-probs)[:3])
            out.append((name, bars, roles))
            prev, prev_roles, prev_bars, done = name, roles, bars, done + bars
        return out


_CACHE: dict[tuple[str, int], ArrangerModel] = {}
_CACHE_LOCK = threading.Lock()


def load_model(path: os.PathLike | str) -> ArrangerModel:
    """The model at ``path``, loaded once per file version (path and mtime)."""
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime_ns if p.exists() else 0)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = ArrangerModel.load(p)
        return _CACHE[key]


def learned_plan(genre, request, *, minutes: float | None, bpm: float,
                 rng: np.random.Generator, settings=None, path: os.PathLike | str | None = None
                 ) -> tuple[list | None, str | None]:
    """The hook ``arrange.py`` calls: sections from the learned arranger, or None.

    Args:
        genre: the ``styles.Genre`` of the song (``request.style``).
        request: the ``prompt.SongRequest`` (its genre, moods, energy shift).
        minutes, bpm, rng: as for ``styles.plan_sections``.
        settings: the settings (``arranger = "rules"`` turns the model off).
        path: a checkpoint to use instead of the user's or the shipped one.

    Returns:
        (sections, note): sections are None when the rule-based plan should be used; the note
        says which model planned the song, or why it was not used (None when no model).
    """
    from loopmind.generate import styles

    if settings is None:
        from loopmind.config import get_settings

        settings = get_settings()
    choice = str(getattr(settings, "arranger", "auto")).lower()
    if choice in ("rules", "off", "none"):
        return None, None
    path = Path(path) if path is not None else find_checkpoint(NAME, settings)
    if path is None:
        return None, None
    try:
        model = load_model(path)
    except ModelError as exc:
        log.warning("%s; using the rule-based plan", exc)
        return None, f"arranger model not used ({exc}); the genre's plan is used"
    from loopmind.generate.train.common import SHIPPED_MODELS_DIR

    # the shipped model plans songs by default only if it beat the rules on held-out
    # projects; one the user trained is always used ("learned" forces the shipped one)
    shipped = path.parent.resolve() == SHIPPED_MODELS_DIR.resolve()
    if shipped and choice != "learned" and not model.meta.get("beats_rules", False):
        return None, None
    natural = genre.natural_bars
    target = natural if minutes is None else max(
        styles.MIN_BARS, int(round(minutes * 60.0 * bpm / 240.0)))
    g_name = genre.name if genre.name in GENRES else None
    mood = request.moods[0].name if request.moods else None
    seq = model.sample(genre=g_name, mood=mood, bpm=bpm, target_bars=target, rng=rng)
    if len({n for n, _, _ in seq}) < 3:
        return None, "the arranger model's plan had fewer than 3 kinds of section; " \
                     "the genre's plan is used"
    energies: dict[str, list[float]] = {}
    for s in genre.sections:
        energies.setdefault(s.name, []).append(s.energy)
    plan = tuple(SectionPlan(n, b, r, float(np.mean(energies[n])) if n in energies
                             else _KIND_ENERGY[n]) for n, b, r in seq)
    fitted = dataclasses.replace(genre, sections=plan, repeat=())
    sections = styles.plan_sections(fitted, minutes=minutes, bpm=bpm, rng=rng,
                                    energy_shift=request.energy_shift)
    if len({s.name for s in sections}) < 3:
        return None, "the arranger model's plan lost its variety when fitted; " \
                     "the genre's plan is used"
    return sections, f"sections planned by the learned arranger ({path.name})"


# -- rule-based baseline ------------------------------------------------------------------------

class RulePredictor:
    """The rule-based plan as a next-section predictor, for comparison.

    For a song of a genre (``DEFAULT_GENRE`` when none), its plan fitted to the song's length;
    the next section after a section is the plan's most frequent successor of that name (the
    plan's section at the same position when the name is not in it); the roles of a section
    are those of the first section of that name in the plan (else in the genre's natural plan,
    else in any genre's).
    """

    def __init__(self, ex: Example):
        from loopmind.generate import styles

        g = GENRES.get(ex.genre or "", styles.DEFAULT_GENRE)
        minutes = ex.bars * 240.0 / max(ex.bpm, 1.0) / 60.0
        self.plan = styles.plan_sections(g, minutes=max(minutes, 0.25), bpm=ex.bpm,
                                         rng=np.random.default_rng(0))
        names = [s.name for s in self.plan] + [END]
        self.successor: dict[str, str] = {}
        counts: dict[str, dict[str, int]] = {}
        for a, b in zip(["start", *names[:-1]], names):
            counts.setdefault(a, {}).setdefault(b, 0)
            counts[a][b] += 1
        for a, c in counts.items():
            self.successor[a] = max(c, key=lambda k: c[k])  # first seen wins ties
        self.names = names
        self.roles: dict[str, frozenset[str]] = {}
        for src in (self.plan, g.sections, *[x.sections for x in GENRES.values()],
                    styles.DEFAULT_GENRE.sections):
            for s in src:
                self.roles.setdefault(s.name, frozenset(s.roles))

    def next_section(self, t: int, prev: str) -> str:
        if prev in self.successor:
            return self.successor[prev]
        return self.names[t] if t < len(self.names) else END


def _f1_counts(pred: set, true: set) -> tuple[int, int, int]:
    tp = len(pred & true)
    return tp, len(pred - true), len(true - pred)


def evaluate(model: ArrangerModel | None, examples: list[Example]) -> dict:
    """Next-section accuracy and role-set F1 (micro, roles of each true next section) on
    ``examples``, teacher-forced; ``model`` None scores the rule-based plan."""
    correct = total = 0
    tp = fp = fn = 0
    for ex in examples:
        names = [n for n, _, _ in ex.sections] + [END]
        if model is not None:
            ps, pr = model.teacher_forced(ex)
            pred_names = [OUTPUTS[int(np.argmax(p))] for p in ps]
            pred_roles = [{r for r, q in zip(ROLES, p) if q >= 0.5} for p in pr]
        else:
            rp = RulePredictor(ex)
            prevs = ["start", *names[:-1]]
            pred_names = [rp.next_section(t, prevs[t]) for t in range(len(names))]
            pred_roles = [set(rp.roles.get(n, frozenset())) for n, _, _ in ex.sections]
        correct += sum(a == b for a, b in zip(pred_names, names))
        total += len(names)
        for pr_set, (_, _, true) in zip(pred_roles, ex.sections):
            a, b, c = _f1_counts(pr_set, set(true))
            tp, fp, fn = tp + a, fp + b, fn + c
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    return {"next_section_accuracy": correct / max(total, 1), "role_f1": f1,
            "steps": total, "correct": correct, "role_counts": [tp, fp, fn],
            "songs": len(examples)}


# -- training (torch) ---------------------------------------------------------------------------

def _torch_module():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            s = len(OUTPUTS)
            self.gru = nn.GRU(input_dim(), HIDDEN, batch_first=True)
            self.section = nn.Linear(HIDDEN, s)
            self.bars = nn.Linear(HIDDEN + s, len(BAR_CLASSES))
            self.roles1 = nn.Linear(HIDDEN + s, ROLE_HIDDEN)
            self.roles2 = nn.Linear(ROLE_HIDDEN, len(ROLES))

        def forward(self, x, next_onehot):
            h, _ = self.gru(x)
            hs = torch.cat([h, next_onehot], dim=-1)
            return (self.section(h), self.bars(hs),
                    self.roles2(torch.relu(self.roles1(hs))))

        def export(self) -> dict[str, np.ndarray]:
            sd = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
            return {"gru.weight_ih": sd["gru.weight_ih_l0"],
                    "gru.weight_hh": sd["gru.weight_hh_l0"],
                    "gru.bias_ih": sd["gru.bias_ih_l0"], "gru.bias_hh": sd["gru.bias_hh_l0"],
                    **{k: v for k, v in sd.items() if not k.startswith("gru.")}}

    return Net


def _batch(examples: list[Example], device: str):
    import torch

    enc = [encode(e) for e in examples]
    T = max(len(a["y"]) for a in enc)
    B, D = len(enc), enc[0]["x"].shape[1]
    x = np.zeros((B, T, D), np.float32)
    y = np.full((B, T), -100, np.int64)
    bars = np.full((B, T), -100, np.int64)
    roles = np.zeros((B, T, len(ROLES)), np.float32)
    rmask = np.zeros((B, T), np.float32)
    nxt = np.zeros((B, T, len(OUTPUTS)), np.float32)
    w = np.zeros((B, T), np.float32)
    for i, (a, e) in enumerate(zip(enc, examples)):
        n = len(a["y"])
        x[i, :n] = a["x"]
        y[i, :n] = a["y"]
        bars[i, :n] = np.where(a["bars"] >= 0, a["bars"], -100)
        roles[i, :n] = a["roles"]
        rmask[i, :n - 1] = 1.0
        nxt[i, np.arange(n), a["y"]] = 1.0
        w[i, :n] = e.weight
    t = lambda v: torch.as_tensor(v, device=device)  # noqa: E731
    return t(x), t(y), t(bars), t(roles), t(rmask), t(nxt), t(w)


def fit(examples: list[Example], *, epochs: int = EPOCHS, seed: int = 0, lr: float = 3e-3,
        device: str = "cpu", budget=None, progress=None) -> dict[str, np.ndarray]:
    """Train on ``examples`` (full batch; they are few) and return the arrays to save.

    Args:
        examples: the training songs (their ``weight`` scales their loss).
        epochs: passes over the data.
        seed: torch's seed (same data and seed -> same weights on the same machine).
        device: "cpu", "cuda" or "mps".
        budget: a ``common.Budget``; training stops early when it is exhausted.
        progress: ``update(done, total, fields)`` (``common.progress_bar``).
    """
    import torch
    import torch.nn.functional as F

    from loopmind.generate.train.common import seed_everything

    seed_everything(seed)
    net = _torch_module()().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    x, y, bars, roles, rmask, nxt, w = _batch(examples, device)
    for epoch in range(epochs):
        net.train()
        ls, lb, lr_ = net(x, nxt)
        ce = F.cross_entropy(ls.reshape(-1, ls.shape[-1]), y.reshape(-1), reduction="none",
                             ignore_index=-100).reshape(y.shape)
        valid = (y >= 0).float() * w
        loss_s = (ce * valid).sum() / valid.sum().clamp(min=1e-6)
        ceb = F.cross_entropy(lb.reshape(-1, lb.shape[-1]), bars.reshape(-1), reduction="none",
                              ignore_index=-100).reshape(bars.shape)
        vb = (bars >= 0).float() * w
        loss_b = (ceb * vb).sum() / vb.sum().clamp(min=1e-6)
        bce = F.binary_cross_entropy_with_logits(lr_, roles, reduction="none").mean(-1)
        vr = rmask * w
        loss_r = (bce * vr).sum() / vr.sum().clamp(min=1e-6)
        loss = loss_s + 0.5 * loss_b + loss_r
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if progress is not None:
            progress(epoch + 1, epochs, {"loss": f"{float(loss.detach()):.3f}"})
        if budget is not None and budget.exhausted:
            break
    return net.export()


@dataclass(kw_only=True)
class ArrangerResult(TrainResult):
    n_projects: int
    n_augmented: int

    def summary_lines(self) -> list[str]:
        m = self.metrics
        lines = [f"{self.n_projects} projects"
                 + (f" + {self.n_augmented} rule-based plans" if self.n_augmented else "")]
        if "model_next_section_accuracy" in m:
            lines.append(f"held-out next-section accuracy {m['model_next_section_accuracy']:.3f}"
                         f" (rules {m['rules_next_section_accuracy']:.3f}), role-set F1 "
                         f"{m['model_role_f1']:.3f} (rules {m['rules_role_f1']:.3f})")
        return lines


def _with_augmentation(real: list[Example], augment: list[Example]) -> list[Example]:
    """Real songs at weight 1; the rule plans together weigh ``AUGMENT_RATIO`` times as much."""
    if not augment:
        return list(real)
    w = AUGMENT_RATIO * len(real) / len(augment)
    return list(real) + [dataclasses.replace(e, weight=w) for e in augment]


def cross_validate(real: list[Example], augment: list[Example], *, epochs: int, seed: int,
                   device: str = "cpu", progress=None) -> dict:
    """Leave-one-project-out: train without each real song, score it; against the rules."""
    total = len(real)
    model_scores, rule_scores = [], []
    for i, held in enumerate(real):
        train = _with_augmentation(real[:i] + real[i + 1:], augment)
        m = ArrangerModel(fit(train, epochs=epochs, seed=seed, device=device))
        model_scores.append(evaluate(m, [held]))
        rule_scores.append(evaluate(None, [held]))
        if progress is not None:
            progress(i + 1, total, {"fold": held.source[:24]})

    def accuracy(scores):
        return sum(s["correct"] for s in scores) / max(sum(s["steps"] for s in scores), 1)

    def f1(scores):  # micro over every section of every held-out song
        tp, fp, fn = np.sum([s["role_counts"] for s in scores], axis=0)
        return float(2 * tp / max(2 * tp + fp + fn, 1))

    mc, rc, steps = (np.array([s[k] for s in sc]) for sc, k in (
        (model_scores, "correct"), (rule_scores, "correct"), (model_scores, "steps")))
    mr, rr = (np.array([s["role_counts"] for s in sc], dtype=np.float64)
              for sc in (model_scores, rule_scores))

    def f1_of(counts):
        tp, fp, fn = counts.sum(axis=0)
        return 2 * tp / max(2 * tp + fp + fn, 1)

    acc_ci = bootstrap_interval(lambda i: (mc[i].sum() - rc[i].sum()) / steps[i].sum(),
                                len(real))
    f1_ci = bootstrap_interval(lambda i: f1_of(mr[i]) - f1_of(rr[i]), len(real))
    return {"accuracy_difference_ci95": list(acc_ci), "role_f1_difference_ci95": list(f1_ci),
            "model_next_section_accuracy": accuracy(model_scores),
            "rules_next_section_accuracy": accuracy(rule_scores),
            "model_role_f1": f1(model_scores), "rules_role_f1": f1(rule_scores),
            "steps": sum(s["steps"] for s in model_scores),
            "folds": total, "per_song": [
                {"source": e.source, "model": ms, "rules": rs}
                for e, ms, rs in zip(real, model_scores, rule_scores)]}



def _beats(metrics: dict) -> bool:
    """Better than the rules on held-out songs: one of next-section accuracy and role-set F1
    higher with 95 % confidence (bootstrap over songs), and the other not significantly lower
    (its interval reaches 0 or above)."""
    if "model_next_section_accuracy" not in metrics:
        return False
    acc, f1 = metrics["accuracy_difference_ci95"], metrics["role_f1_difference_ci95"]
    return (acc[0] > 0 and f1[1] >= 0) or (f1[0] > 0 and acc[1] >= 0)


def too_little_message(n: int, folder) -> str:
    return (f"arranger: {n} project{'s' if n != 1 else ''} with sections found in {folder}; "
            f"at least {MIN_PROJECTS} are needed (LMMS .mmp/.mmpz, FL Studio .flp, "
            "arrangement JSON or LoopMind arrangement.json)")


def train(folder: os.PathLike | str | list, *, out: os.PathLike | str | None = None,
          epochs: int | None = None, budget_minutes: float | None = None, seed: int = 0,
          augment: bool = True, cross_val: bool = True, device: str | None = None,
          quiet: bool = False, data_note: str = "") -> ArrangerResult:
    """``loopmind train arranger DIR``: load, cross-validate, train, save, write the card.

    Raises:
        TrainingDataError: fewer than ``MIN_PROJECTS`` usable projects under ``folder``.
    """
    import time

    from loopmind.generate.train.common import (Budget, pick_device, progress_bar,
                                                save_checkpoint, user_models_dir)

    t0 = time.monotonic()
    folders = [Path(f) for f in (folder if isinstance(folder, (list, tuple)) else [folder])]
    for f in folders:
        if not f.exists():
            raise TrainingDataError(f"arranger: {f} does not exist")
    folder = ", ".join(str(f) for f in folders)
    warnings: list[str] = []
    real = [e for f in folders for e in load_examples(f, warnings=warnings)]
    if len(real) < MIN_PROJECTS:
        raise TrainingDataError(too_little_message(len(real), folder))
    device = pick_device(device)
    epochs = epochs or EPOCHS
    aug = rule_examples(seed=seed) if augment else []
    metrics: dict = {}
    if cross_val:
        with progress_bar("arranger: leave-one-project-out", len(real), quiet=quiet) as bar:
            metrics = cross_validate(real, aug, epochs=epochs, seed=seed, device=device,
                                     progress=bar)
    budget = Budget(budget_minutes)
    with progress_bar("arranger: training", epochs, quiet=quiet) as bar:
        tensors = fit(_with_augmentation(real, aug), epochs=epochs, seed=seed, device=device,
                      budget=budget, progress=bar)
    out = Path(out) if out else user_models_dir() / f"{NAME}.safetensors"
    in_sample = evaluate(ArrangerModel(tensors), real)
    metrics["in_sample"] = in_sample
    save_checkpoint(out, tensors, model=NAME, version=VERSION, vocab=_vocab(),
                    features={"hidden": HIDDEN, "role_hidden": ROLE_HIDDEN},
                    trained_on={"projects": len(real), "augmented": len(aug)},
                    beats_rules=_beats(metrics),
                    metrics={k: v for k, v in metrics.items() if k != "per_song"})
    seconds = time.monotonic() - t0
    card = write_card(out, real=real, aug=aug, metrics=metrics, tensors=tensors,
                      device=device, seconds=seconds, data_note=data_note, epochs=epochs)
    return ArrangerResult(path=out, card=card, metrics=metrics, n_projects=len(real),
                       n_augmented=len(aug), seconds=seconds, warnings=warnings)


def write_card(out: Path, *, real, aug, metrics, tensors, device, seconds, data_note, epochs):
    from loopmind.generate.train.common import n_parameters, write_model_card

    n_inf = sum(e.inferred for e in real)
    genres = sorted({e.genre or "none" for e in real})
    data = (f"{len(real)} projects with sections ({n_inf} with sections inferred by the project "
            f"importer, not marked by their authors), {sum(len(e.sections) for e in real)} "
            f"sections; genres in the projects: {', '.join(genres)}.")
    if data_note:
        data += "\n\n" + data_note
    if aug:
        data += (f"\n\nAugmentation: {len(aug)} of LoopMind's own rule-based plans "
                 f"(`styles.plan_sections`, {len(aug) // max(len(GENRES), 1)} per genre with "
                 "random moods, lengths 1.5-4.5 min and tempos in the genre's range). Together "
                 f"they weigh {AUGMENT_RATIO:g} times as much as the real projects (chosen from "
                 "0.3, 1 and 3 on the same leave-one-project-out folds that the metrics below "
                 "come from, so those figures are slightly optimistic), so the model knows every "
                 "genre's conventions while the real projects pull it towards how people "
                 "actually arrange. The rule plans are never in a held-out fold's test side.")
    n = n_parameters(tensors)
    size = (f"{n} parameters ({n * 4} bytes float32): GRU {HIDDEN} units over "
            f"{input_dim()} inputs (previous section, its roles and length class, position, "
            f"genre, mood, tempo); heads for the next section ({len(OUTPUTS)}), its length "
            f"({len(BAR_CLASSES)} classes) and its roles ({len(ROLES)} sigmoids, one hidden "
            f"layer of {ROLE_HIDDEN}). {epochs} full-batch Adam epochs.")
    if "model_next_section_accuracy" in metrics:
        m = metrics
        rows = ["Leave-one-project-out over the real projects (teacher-forced: each step sees "
                "the true history; roles are predicted for the true next section, threshold "
                "0.5, micro F1 over the role sets of all held-out sections). The rule-based "
                "plan is the "
                "genre's plan (`DEFAULT_GENRE` when the project names none) fitted to the "
                "project's length: its next section is the plan's most frequent successor of "
                "the current one, its roles those of the plan's section of that name.", "",
                "| predictor | next-section accuracy | role-set F1 |", "|---|---|---|",
                f"| learned arranger | {m['model_next_section_accuracy']:.3f} | "
                f"{m['model_role_f1']:.3f} |",
                f"| rule-based plan | {m['rules_next_section_accuracy']:.3f} | "
                f"{m['rules_role_f1']:.3f} |", "",
                "Differences (learned − rules), 95 % bootstrap intervals over songs: "
                f"accuracy [{m['accuracy_difference_ci95'][0]:+.3f}, "
                f"{m['accuracy_difference_ci95'][1]:+.3f}], role-set F1 "
                f"[{m['role_f1_difference_ci95'][0]:+.3f}, "
                f"{m['role_f1_difference_ci95'][1]:+.3f}]. "
                + ("It is better than the rules on one measure with 95 % confidence and not "
                   "significantly worse on the other, so `generate` uses the shipped checkpoint "
                   "by default (`arranger = \"rules\"` turns it off)."
                   if _beats(m) else
                   "It is **not** clearly better than the rules (better on one measure with "
                   "95 % confidence and not significantly worse on the other), so `generate` "
                   "does not use "
                   "the shipped checkpoint by default (`arranger = \"learned\"` in config.toml "
                   "uses it anyway; a checkpoint you train yourself is always used)."), "",
                f"In-sample (trained on these; NOT a generalization figure): accuracy "
                f"{m['in_sample']['next_section_accuracy']:.3f}, role F1 "
                f"{m['in_sample']['role_f1']:.3f}."]
        metrics_text = "\n".join(rows)
    else:
        metrics_text = (f"No cross-validation was run. In-sample: accuracy "
                        f"{metrics['in_sample']['next_section_accuracy']:.3f}, role F1 "
                        f"{metrics['in_sample']['role_f1']:.3f}.")
    limits = ("Few real projects, most without a genre or mood, and with sections inferred from "
              "which tracks play; the section and role vocabularies are LoopMind's. `generate` "
              "samples a plan (temperature 0.7) with the song's seed, fits it to the requested "
              "length with the rule-based fitter, and falls back to the genre's plan when the "
              "model is absent, refused (another version, wrong shapes) or its plan has fewer "
              "than three kinds of section. `arranger = \"rules\"` in config.toml (or "
              "`LOOPMIND_ARRANGER=rules`) turns it off.")
    reproduce = ("```\n/work/shared/eval/build.sh /work/eval-data   # the LMMS demos "
                 "(apt-get download lmms-common)\ncd /work/main && PYTHONPATH=. "
                 "/work/venv/bin/python benchmarks/train_models.py arranger\n```\n"
                 "or, for your own projects: `loopmind train arranger DIR`.")
    return write_model_card(out.with_suffix(".md"),
                            title=f"{out.name} — the learned arranger",
                            summary="Predicts the next section of a song and the roles that "
                                    "play in it, conditioned on genre, mood and tempo; read by "
                                    "`loopmind/generate/train/arranger.py` (numpy; the file "
                                    "holds weights and a JSON header, nothing executable).",
                            data=data, size=size, metrics=metrics_text, reproduce=reproduce,
                            limits=limits, device=device, train_time_s=seconds)
