"""Interpretive mode on the dev material: novelty, fidelity, training time, GRU vs Markov.

Pools are the dev set's sources, each its own "library" (roles, tempi and bar counts from
labels.csv, the way an indexed library would know them; no indexing is run):

* lmms: the LMMS samples (drum one-shots and beats, bass one-shots and loops, instruments);
* sonicpi: the Sonic Pi samples (drums, basses, ambient pads, drum loops);
* hydrogen: the Hydrogen kits' one-shots (no loops: rhythm falls back to genre patterns);
* groove: the Groove MIDI loops (rendered drum performances, 361 loops).

For every pool and seeds 0..2, ``interpret_parts`` writes parts for a 20-bar skeleton (intro 4 /
verse 8 / hook 8 bars in A minor, every role asked for) at the pool's median loop tempo. Each
generated clip is rendered with the song renderer (``loopmind.generate.render.render_clip``),
then:

* novelty: every non-silent generated bar against every source bar of the pool (loops cut at
  their bar lines), max normalized cross-correlation over +-20 ms at 8 kHz; target < 0.9;
* fidelity: each generated track (all its clips, first 30 s) embedded and compared with its
  own pool and every other pool (``COMPARISONS``): against the pools' items as they are (3
  nearest of the whole pool; 3 nearest or the centroid of the part's source roles), and like
  for like, against every pool's items of the part's source roles played in the part's form
  (``measures.reference_part``: loops stretched to the tempo and repeated, one-shots on the
  part's steps; 3 nearest or the centroid), each with the ``features`` embedder and with its
  timbre-only twin (no role block); the primary comparison is like for like, timbre only,
  centroid (chosen before the first run); target: >= 90 % of parts closer to their own pool
  than to any other;
* key: melodic events whose note (or chord root) is in A minor;
* determinism: seed 0 run twice gives identical events; seeds 0, 1, 2 differ;
* training: a cold GRU fit on each pool with the 30 s budget (time, passes, stopped by the
  budget?), and GRU vs Markov (order 3) held-out log-likelihood per token (every fifth loop
  held out, both trained on the rest).

    python benchmarks/bench_interpret.py [--seeds 3] [--fidelity-only] [--ref-cache FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import labels, machine, write_result  # noqa: E402

NOVELTY_SR = 8000
EMBED_SR = 22050
PART_S = 30.0  # a generated part is embedded from its first 30 s
ROLES_ALL = ["kick", "snare", "clap", "hihat", "perc", "cymbal", "drumloop", "bass", "keys",
             "lead", "strings", "guitar", "vocal"]


def build_pools() -> dict[str, object]:
    import soundfile as sf

    from loopmind.generate.pool import Pool, PoolItem

    rows = labels()
    info: dict[str, dict] = defaultdict(dict)
    for r in rows:
        d = info[r["path"]]
        d["abspath"] = r["abspath"]
        if r["task"] == "role":
            d.update(role=r["truth"], kind=r["kind"])
        elif r["task"] == "bpm":
            d.update(bpm=float(r["truth"]), kind="loop",
                     bars=float(r["bars"]) if r["bars"] else None)
            if r["path"].startswith("groove/"):
                d["role"] = "drumloop"
    groups = {"lmms": "samples/lmms_", "sonicpi": "samples/sp_", "hydrogen": "samples/h2_",
              "groove": "groove/gmd_"}
    pools = {}
    next_id = 1
    for name, prefix in groups.items():
        items = []
        for rel in sorted(p for p in info if p.startswith(prefix)):
            d = info[rel]
            path = d["abspath"]
            if not d.get("role"):
                continue
            try:
                dur = sf.info(path).duration
            except Exception:  # noqa: BLE001 - files libsndfile cannot read are left out
                continue
            items.append(PoolItem(id=next_id, path=path, start_s=0.0, end_s=dur,
                                  kind=d.get("kind", "oneshot"), role=d["role"],
                                  bpm=d.get("bpm"), bpm_confidence=1.0, key=None,
                                  bars=d.get("bars"), lufs=None))
            next_id += 1
        pools[name] = Pool(items=items, source=name)
    return pools


def pool_tempo(pool) -> float:
    """The song tempo for a pool: its loops' median tempo, as the arranger would pick one
    the loops play at (120 when it has no loops)."""
    bpms = [it.bpm for it in pool.loops()]
    return float(round(np.median(bpms))) if bpms else 120.0


def skeleton(bpm: float = 120.0):
    from loopmind.generate.song import Section, Song

    return Song(bpm=bpm, key="A minor", seed=0, sections=[
        Section("intro", 0, 4, roles=["kick", "hihat", "keys", "strings"], energy=0.3),
        Section("verse", 4, 8, roles=["kick", "snare", "hihat", "drumloop", "bass", "keys",
                                      "lead", "guitar"], energy=0.6),
        Section("hook", 12, 8, roles=list(ROLES_ALL), energy=0.9)])


def source_bars(pool, sr: int) -> list[np.ndarray]:
    from loopmind.generate.interpret.measures import bars_of
    from loopmind.generate.render import load_source

    out = []
    for it in pool.loops():
        y = load_source(it.path, it.start_s, it.end_s, sr=sr).mean(axis=0)
        out += bars_of(y, sr=sr, bar_s=240.0 / it.bpm)
    return out


def embed_both(y: np.ndarray, sr: int, embedders) -> dict[str, np.ndarray]:
    """Vectors of a signal by each embedder (``features`` and its timbre-only twin share one
    feature pass)."""
    full = embedders["features"]
    feats = full.features(np.asarray(y, dtype=np.float32), sr=sr)
    return {name: np.asarray(e.from_features(*feats), dtype=np.float32)
            for name, e in embedders.items()}


def pool_vectors(pool, embedders) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each item's vector (first 10 s) per embedder, and the items' roles."""
    from loopmind.generate.render import load_source

    vecs: dict[str, list] = defaultdict(list)
    fams = []
    for it in pool.items:
        end = min(it.end_s, it.start_s + 10.0)
        try:
            y = load_source(it.path, it.start_s, end, sr=EMBED_SR)
        except Exception:  # noqa: BLE001
            continue
        for name, v in embed_both(y.mean(axis=0), EMBED_SR, embedders).items():
            vecs[name].append(v)
        fams.append(it.role or "")
    return {name: (np.array(v), np.array(fams)) for name, v in vecs.items()}


def reference_vectors(part: dict, pools, embedders, cache: dict) -> dict:
    """Every pool's items of the part's source roles played in the part's form (see
    ``measures.reference_part``): {embedder: {pool: (n, d) array}}.

    A loop's reference depends only on the item, the tempo and the part's length, so it is
    kept in ``cache``; a one-shot's is played on the part's own steps, so it is made per part.
    """
    from scipy.signal import resample_poly

    from loopmind.generate.interpret.measures import reference_part

    song, clips = part["song"], part["clips"]
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for pname, pool in pools.items():
        for it in pool.items:
            if it.role not in part["src_roles"]:
                continue
            is_loop = it.kind == "loop"
            key = (it.path, it.start_s, it.end_s, song.bpm, sum(c.bars for c in clips))
            feats = cache.get(key) if is_loop else None
            if feats is None:
                try:
                    y = reference_part(clips, song, path=it.path, start_s=it.start_s,
                                       end_s=it.end_s, loop=is_loop, bpm=it.bpm,
                                       bars=it.bars, role=part["role"], max_s=PART_S)
                except Exception:  # noqa: BLE001 - an unreadable item is left out
                    continue
                if not np.any(y):
                    continue
                y = resample_poly(y, EMBED_SR // 50, song.sample_rate // 50)
                feats = embedders["features"].features(y.astype(np.float32), sr=EMBED_SR)
                if is_loop:
                    cache[key] = feats
            for name, e in embedders.items():
                out[name][pname].append(np.asarray(e.from_features(*feats), dtype=np.float32))
    return {name: {p: np.array(v) for p, v in d.items()} for name, d in out.items()}


COMPARISONS = {
    # (reference, distance, embedder): label
    ("items", "whole", "features"): "3 nearest items of the whole pool",
    ("items", "knn", "features"): "3 nearest items of the part's source roles",
    ("items", "centroid", "features"): "centroid of the part's source roles",
    ("items", "whole", "timbre"): "timbre only: 3 nearest items of the whole pool",
    ("items", "knn", "timbre"): "timbre only: 3 nearest items of the part's source roles",
    ("items", "centroid", "timbre"): "timbre only: centroid of the part's source roles",
    ("parts", "knn", "features"): "like for like: 3 nearest source-role items played as the part",
    ("parts", "centroid", "features"): "like for like: centroid of source-role items played as "
                                       "the part",
    ("parts", "knn", "timbre"): "like for like, timbre only: 3 nearest",
    ("parts", "centroid", "timbre"): "**like for like, timbre only: centroid (primary, chosen "
                                     "before the run)**",
}
PRIMARY = ("parts", "centroid", "timbre")
PROTOCOL_NOTE = (
    "How the comparisons differ. The item comparisons set a part (a pattern of slices over "
    "16-20 bars at the song's tempo) against single loops at their own tempo and single hits, "
    "so they mix 'is this the pool's sound' with 'is this a part'. The like-for-like "
    "references, chosen before the run, are every pool's items of the part's source roles "
    "played in the part's form, as the direct arranger plays them "
    "(`measures.reference_part`): a loop stretched to the part's tempo and repeated over the "
    "part's bars, a one-shot triggered on the part's own steps with their velocities (no key "
    "shift), cut to the same 30 s. The primary distance is the cosine distance to the centroid "
    "of a pool's references, which does not shrink as a pool grows (the mean of the 3 nearest, "
    "also given, does: groove has 361 drum loops, lmms 8); 'timbre only' is the `features` "
    "embedder without its role block (`FeatureEmbedder(role_model=None)`): both pools' "
    "references play the part's roles, so that block only adds noise. k = 3 and every other "
    "setting are the same for every pool and part.")


def fidelity(parts: list[dict], pools: dict) -> dict:
    """Share of generated parts closer to their own pool than to other pools, per comparison.

    References: "items" are the pool's items as they are (first 10 s); "parts" are the pool's
    items of the part's source roles played in the part's form (``reference_vectors``).
    Distances: "whole" is the mean cosine distance to the 3 nearest items of the whole pool,
    "knn" the same over the references of the part's source roles, "centroid" the cosine
    distance to their mean. Embedders: ``features`` as shipped, and "timbre" (the same
    vector without its role block). Pools without references of those roles are left out;
    a part counts as faithful when its own pool is nearer than every other pool compared.
    """
    from loopmind.generate.interpret.measures import centroid_distance, pool_distance

    out = {}
    for comp in COMPARISONS:
        ref, how, emb = comp
        ok = n = pair_ok = pair_n = 0
        per_pool = defaultdict(lambda: [0, 0])
        per_type = defaultdict(lambda: [0, 0])
        misses = []
        for part in parts:
            pname, v = part["pool"], part["vec"][emb]

            def dist(other: str):
                if ref == "parts":
                    sel = part["refs"][emb].get(other)
                    if sel is None or not len(sel):
                        return None
                else:
                    vecs, roles = pools[other][emb]
                    sel = vecs if how == "whole" else vecs[np.isin(roles, part["src_roles"])]
                    if not len(sel):
                        return None
                return centroid_distance(v, sel) if how == "centroid" else \
                    pool_distance(v, sel)

            own = dist(pname)
            others = {o: dist(o) for o in pools if o != pname}
            others = {o: d for o, d in others.items() if d is not None}
            if own is None or not others:
                continue
            good = all(own < d for d in others.values())
            ok += good
            n += 1
            per_pool[pname][0] += good
            per_pool[pname][1] += 1
            per_type[part["made_of"]][0] += good
            per_type[part["made_of"]][1] += 1
            pair_ok += sum(own < d for d in others.values())
            pair_n += len(others)
            if not good:
                o = min(others, key=others.get)
                misses.append(f"{pname}/{part['track']} s{part['seed']} ({own:.3f} vs {o} "
                              f"{others[o]:.3f})")
        out[comp] = dict(ok=ok, n=n, pair_ok=pair_ok, pair_n=pair_n, per_pool=dict(per_pool),
                         per_type=dict(per_type), misses=misses)
    return out


def own_material_baseline(parts: list[dict]) -> dict:
    """How often the pools' own material passes the primary comparison: for each part, each of
    its own pool's references (own items played as the part) against the centroid of the
    pool's other references (leave one out) and the other pools' centroids.

    Returns:
        {"mean": mean over parts of the share that passes, "ok": passing references,
        "n": references, "parts": parts counted}.
    """
    from loopmind.generate.interpret.measures import centroid_distance

    _, _, emb = PRIMARY
    shares, ok_all, n_all = [], 0, 0
    for part in parts:
        refs = part["refs"][emb]
        own = refs.get(part["pool"])
        others = [x for o, x in refs.items() if o != part["pool"] and len(x)]
        if own is None or len(own) < 2 or not others:
            continue
        ok = 0
        for i in range(len(own)):
            d_own = centroid_distance(own[i], np.delete(own, i, axis=0))
            ok += all(d_own < centroid_distance(own[i], x) for x in others)
        shares.append(ok / len(own))
        ok_all += ok
        n_all += len(own)
    return dict(mean=float(np.mean(shares)) if shares else float("nan"), ok=ok_all, n=n_all,
                parts=len(shares))


def fidelity_lines(fid: dict, pools, baseline: dict | None = None) -> list[str]:
    """The fidelity section of the results file."""
    lines = [
        "**Fidelity**: each generated track (all its clips, first 30 s) embedded and compared "
        "with its own pool and every other pool; a part is faithful when its own pool is nearer "
        "than every other pool compared. Target: at least 90 % of parts.",
        "",
        "| comparison | parts faithful | pairwise (own vs one other) | "
        + " | ".join(pools) + " | parts made of loop slices | parts made of one-shots |",
        "|---|---|---|" + "---|" * (len(pools) + 2),
    ]
    for comp, label in COMPARISONS.items():
        f = fid[comp]
        lines.append(f"| {label} | {f['ok']}/{f['n']} = {f['ok'] / max(1, f['n']):.1%} "
                     f"| {f['pair_ok']}/{f['pair_n']} = "
                     f"{f['pair_ok'] / max(1, f['pair_n']):.1%} | "
                     + " | ".join(f"{f['per_pool'].get(p, [0, 0])[0]}/"
                                  f"{f['per_pool'].get(p, [0, 0])[1]}" for p in pools)
                     + " | " + " | ".join(f"{f['per_type'].get(t, [0, 0])[0]}/"
                                          f"{f['per_type'].get(t, [0, 0])[1]}"
                                          for t in ("loop slices", "one-shots")) + " |")
    f = fid[PRIMARY]
    share = f["ok"] / max(1, f["n"])
    lines += ["", f"Target ≥ 90 %: {'met' if share >= 0.9 else 'not met'} by the primary "
              f"comparison ({f['ok']}/{f['n']} = {share:.1%})."]
    if baseline:
        lines += ["", "What the pools' own material scores on the primary comparison: each "
                  "own-pool reference of each part (an item of the pool played as the part) "
                  "against the centroid of the pool's other references and the other pools' "
                  f"centroids passes for {baseline['mean']:.1%} of a part's references on "
                  f"average over {baseline['parts']} parts ({baseline['ok']}/{baseline['n']} "
                  f"= {baseline['ok'] / max(1, baseline['n']):.1%} of all references)."
                  + (" The pools' own sounds do not reach 90 % either: where the pools' sets "
                     "of one role overlap, a part made of one of those sounds cannot be told "
                     "apart reliably by this embedding." if baseline["mean"] < 0.9 else "")]
    lines += ["", PROTOCOL_NOTE, ""]
    for comp in (("items", "knn", "features"), PRIMARY):
        m = fid[comp]["misses"]
        lines.append(f"Misses ({COMPARISONS[comp].strip('*')}): " + (", ".join(m[:15]) or "none")
                     + (f", ... ({len(m)} in all)" if len(m) > 15 else ""))
        lines.append("")
    return lines[:-1]


def history(path: str) -> str:
    """The results file's hand-kept "## History" section (earlier runs' figures), kept as is."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""
    i = text.find("\n## History")
    return text[i:] if i >= 0 else ""


def events_of(tracks):
    return [(t.name, c.start_bar, e.step, e.length, e.slice_id, e.semitones, e.pitch)
            for t in tracks for c in t.clips for e in c.events]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--dump", help="pickle the part and pool vectors here")
    ap.add_argument("--out", default=None,
                    help="the results file (default results/interpret.md; with "
                         "--fidelity-only the table is only printed unless --out is given)")
    ap.add_argument("--fidelity-only", action="store_true",
                    help="skip training, GRU vs Markov, novelty and determinism")
    ap.add_argument("--ref-cache", help="keep the loop references' features in this pickle")
    args = ap.parse_args()
    if args.out is None and not args.fidelity_only:
        args.out = str(Path(__file__).parent / "results" / "interpret.md")

    import torch
    from scipy.signal import resample_poly

    from loopmind.config import Settings, set_settings
    from loopmind.generate.interpret import seqmodel
    from loopmind.generate.interpret.learn import learn
    from loopmind.generate.interpret.measures import NoveltyIndex, bars_of
    from loopmind.generate.interpret.parts import _key_parts, interpret_parts
    from loopmind.generate.interpret.slices import slice_pool
    from loopmind.generate.render import render_clip
    from loopmind.index.embed import FeatureEmbedder, get_embedder

    torch.set_num_threads(1)
    t_all = time.perf_counter()
    pools = build_pools()
    # the timbre-only twin: the same features without the role block (both candidates of a
    # comparison share the role, so the role block only adds the same noise to every distance)
    embedders = {"features": get_embedder("features"),
                 "timbre": FeatureEmbedder(role_model=None)}
    song = skeleton()
    tempos = {name: pool_tempo(pool) for name, pool in pools.items()}
    tonic, mode = _key_parts(song.key)
    scale = {(tonic + s) % 12 for s in ((0, 2, 3, 5, 7, 8, 10) if mode == "minor"
                                        else (0, 2, 4, 5, 7, 9, 11))}
    rows_pool, rows_train, rows_ll = [], [], []
    parts_vec: list[dict] = []
    novelty_all: dict[str, list[float]] = defaultdict(list)
    key_in = key_total = 0
    determinism = []
    notes_seen: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"LOOPMIND_HOME": os.path.join(tmp, "home")})
        set_settings(settings)
        vectors = {}
        for name, pool in pools.items():
            song = skeleton(tempos[name])
            t0 = time.perf_counter()
            bank = slice_pool(pool, settings=settings)
            slice_s = time.perf_counter() - t0
            model = learn(bank, pool)
            seqs = model.sequences()
            n_tok = sum(len(s) for s in seqs)
            # training time with the budget (cold), as interpret_parts would do it
            if n_tok >= seqmodel.MIN_TOKENS_FOR_GRU and not args.fidelity_only:
                m = seqmodel.train_gru(seqs, pool_key=bank.key, budget_s=args.budget)
                rows_train.append((name, n_tok, len(m.vocab), m.train_s, m.epochs,
                                   m.stopped_by_budget))
                # GRU vs Markov on held-out loops
                train = [s for i, s in enumerate(seqs) if i % 5 != 4]
                test = [s for i, s in enumerate(seqs) if i % 5 == 4]
                if test and sum(len(s) for s in train) >= seqmodel.MIN_TOKENS_FOR_GRU:
                    g = seqmodel.train_gru(train, pool_key=bank.key + "-ho",
                                           budget_s=args.budget)
                    mk = seqmodel.MarkovModel(train)
                    lg, n = g.log_likelihood(test)
                    lm, _ = mk.log_likelihood(test)
                    unk = sum(1 for s in test for t in s if t not in set(mk.vocab))
                    rows_ll.append((name, len(train), len(test), n, -lg / n, -lm / n, unk))
            vectors[name] = pool_vectors(pool, embedders)
            by_id = {x.id: x for x in bank.slices}
            srcs = [] if args.fidelity_only else source_bars(pool, NOVELTY_SR)
            index = NoveltyIndex(srcs, sr=NOVELTY_SR)
            t_gen = []
            n_tracks = 0
            first_events = None
            seed_events = []
            for seed in range(args.seeds):
                t1 = time.perf_counter()
                tracks, notes = interpret_parts(song, pool, seed=seed, settings=settings,
                                                budget_s=args.budget, bank=bank)
                t_gen.append(time.perf_counter() - t1)
                notes_seen.setdefault(name, notes)
                ev = events_of(tracks)
                seed_events.append(ev)
                if seed == 0 and not args.fidelity_only:
                    again, _ = interpret_parts(song, pool, seed=0, settings=settings,
                                               budget_s=args.budget, bank=bank)
                    first_events = events_of(again)
                n_tracks += len(tracks)
                for t in tracks:
                    audio = []
                    for c in t.clips:
                        y = render_clip(c, song, None, role=t.role)
                        span = song.bar_to_sample(c.end_bar) - song.bar_to_sample(c.start_bar)
                        y = y.mean(axis=0)[:span]
                        audio.append(y)
                        y8 = [] if args.fidelity_only else \
                            resample_poly(y, NOVELTY_SR // 100, song.sample_rate // 100)
                        for bar in bars_of(y8, sr=NOVELTY_SR, bar_s=song.bar_s):
                            if np.abs(bar).max() > 1e-3:
                                novelty_all[name].append(index.score(bar) if len(index)
                                                         else 0.0)
                        for e in c.events:
                            if e.pitch is not None:
                                key_total += 1
                                key_in += int(e.pitch % 12 in scale)
                    whole = np.concatenate(audio)[: int(PART_S * song.sample_rate)]
                    whole = resample_poly(whole, EMBED_SR // 50, song.sample_rate // 50)
                    src_roles = sorted({by_id[e.slice_id].role for c in t.clips
                                        for e in c.events})
                    kinds = [by_id[e.slice_id].kind for c in t.clips for e in c.events]
                    made_of = "loop slices" if kinds.count("loop") * 2 > len(kinds) \
                        else "one-shots"
                    parts_vec.append(dict(pool=name, track=t.name, seed=seed,
                                          vec=embed_both(whole, EMBED_SR, embedders),
                                          src_roles=src_roles, made_of=made_of,
                                          role=t.role, song=song, clips=t.clips))
            determinism.append((name, first_events == seed_events[0],
                                len({repr(e) for e in seed_events}) == len(seed_events)))
            nov = novelty_all[name]
            rows_pool.append((name, len(pool.items), len(bank.slices), slice_s, n_tok,
                              len(srcs), n_tracks, len(nov),
                              float(np.mean(np.array(nov) < 0.9)) if nov else float("nan"),
                              float(np.max(nov)) if nov else float("nan"),
                              t_gen[0], float(np.median(t_gen[1:] or t_gen)),
                              len(bank.notes)))
            print(rows_pool[-1], flush=True)
    import pickle

    t_ref = time.perf_counter()
    ref_cache: dict = {}
    if args.ref_cache and os.path.exists(args.ref_cache):
        with open(args.ref_cache, "rb") as fh:
            ref_cache = pickle.load(fh)
    for part in parts_vec:
        part["refs"] = reference_vectors(part, pools, embedders, ref_cache)
    if args.ref_cache:
        with open(args.ref_cache, "wb") as fh:
            pickle.dump(ref_cache, fh)
    ref_s = time.perf_counter() - t_ref
    print(f"references: {ref_s:.0f} s", flush=True)
    if args.dump:
        with open(args.dump, "wb") as fh:
            pickle.dump({"parts": [{k: v for k, v in p.items() if k not in ("song", "clips")}
                                   for p in parts_vec], "pools": vectors}, fh)
    fid = fidelity(parts_vec, vectors)
    baseline = own_material_baseline(parts_vec)
    if args.fidelity_only:
        text = "\n".join(fidelity_lines(fid, pools, baseline)) + "\n"
        print(text)
        if args.out:
            write_result(args.out, text)
        return
    total_s = time.perf_counter() - t_all

    nov_all = [x for v in novelty_all.values() for x in v]
    lines = [
        "# Interpretive mode: novelty, fidelity, training",
        "",
        f"Machine: {machine()} (shared with other jobs while this ran). "
        f"Run time {total_s / 60:.1f} min. Dev material: "
        f"{os.environ.get('LOOPMIND_EVAL_DATA', '/work/eval-data')} (labels.csv gives roles, "
        "tempi and bar counts; no indexing).",
        "",
        "Skeleton: 20 bars in A minor (intro 4, verse 8, hook 8; every role asked for) at the "
        "pool's median loop tempo ("
        + ", ".join(f"{n} {b:g}" for n, b in tempos.items())
        + f" BPM), seeds 0..{args.seeds - 1}. Generated clips rendered with "
        "`loopmind.generate.render.render_clip` (sequence clips).",
        "",
        "## Per pool",
        "",
        "| pool | items | slices | slicing s | tokens | source bars | generated tracks | "
        "generated bars | bars with NCC < 0.9 | max NCC | interpret_parts s (cold model) | "
        "interpret_parts s (cached model) | skip notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows_pool:
        lines.append("| " + " | ".join([r[0], str(r[1]), str(r[2]), f"{r[3]:.1f}", str(r[4]),
                                         str(r[5]), str(r[6]), str(r[7]), f"{r[8]:.1%}",
                                         f"{r[9]:.3f}", f"{r[10]:.2f}", f"{r[11]:.2f}",
                                         str(r[12])]) + " |")
    lines += [
        "",
        f"**Novelty**: {np.mean(np.array(nov_all) < 0.9):.1%} of {len(nov_all)} generated "
        f"bars have a max NCC below 0.9 against every source bar of their pool (target 100 %); "
        f"max {max(nov_all):.3f}, median {np.median(nov_all):.3f}. Pools without loops "
        "(hydrogen) have no source bars to copy: their bars score 0.",
        "",
    ]
    lines += fidelity_lines(fid, pools, baseline)
    lines += [
        "",
        f"**Key**: {key_in}/{key_total} melodic events ({key_in / max(1, key_total):.1%}) play a "
        "note or chord root in A minor. Every event is on the 16th grid by construction.",
        "",
        "**Determinism**: " + "; ".join(
            f"{p}: same seed {'identical' if same else 'DIFFERENT'}, seeds "
            f"{'all differ' if differ else 'SOME EQUAL'}" for p, same, differ in determinism),
        "",
        "## Sequence model training (cold, budget "
        f"{args.budget:g} s, 1 thread)",
        "",
        "| pool | tokens | vocabulary | train s | passes | stopped by budget |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows_train:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]} | "
                     f"{'yes' if r[5] else 'no'} |")
    lines += [
        "",
        "Training stops when the held-out sixth of the chunks stops improving (12 passes), or "
        "at the budget. Pools under 64 tokens use the Markov chain (hydrogen: no loops, 0 "
        "tokens).",
        "",
        "## GRU vs Markov (held-out loops: every fifth)",
        "",
        "| pool | train loops | test loops | test tokens | GRU NLL/token | Markov NLL/token | "
        "test tokens unseen in training |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows_ll:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | "
                     f"{r[6]} |")
    lines += ["", "NLL in nats (lower is better); a token never seen in training scores 1e-6 "
              "for both models. Only a pool with many loops gives a meaningful comparison "
              "(lmms: one held-out loop, most of its tokens never seen in training; sonicpi: "
              "too few loops to hold one out).", "", "## Notes from one run per pool", ""]
    for p, ns in notes_seen.items():
        shown = [n for n in ns if "skipped" not in n][:8]
        skipped = sum(1 for n in ns if "skipped" in n)
        lines.append(f"- {p}: {skipped} files skipped (silent/noise/short/unreadable); "
                     + " / ".join(shown))
    write_result(args.out, "\n".join(lines) + "\n" + history(args.out))


if __name__ == "__main__":
    main()
