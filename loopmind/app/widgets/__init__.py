"""The studio's panes and their parts, one widget per module."""
