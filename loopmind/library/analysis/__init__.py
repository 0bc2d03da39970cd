"""Audio analysis: tempo, key, loudness, role and tone, all from one decoded array."""
