"""Trained models: the arranger, the mixer and the embedder, and ``loopmind train``.

Nothing is imported here: ``common`` holds the checkpoint format and the training helpers,
``arranger``, ``mixer`` and ``embedder`` one model each. Inference of the arranger and the
mixer runs on numpy (no torch at ``generate`` time); torch is imported only when training or
when the learned embedder runs.
"""
