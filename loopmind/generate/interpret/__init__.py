"""Interpretive mode: learn the pool's own material and play new parts with it.

``slices`` cuts every loop at its onsets on the beat grid (one-shots are single slices) and
measures each slice (pitch, chord, timbre); ``learn`` turns the slices into per-role
statistics (16th-grid rhythm, which slice follows which, melodic intervals, harmony);
``seqmodel`` trains a small GRU over slice tokens (a Markov chain when the pool is small);
``parts`` writes new drum, bass and melodic parts as ``Clip.events`` that trigger the user's
slices; ``measures`` checks novelty and fidelity. Nothing heavy is imported here: torch only
when a model is trained or sampled.
"""
