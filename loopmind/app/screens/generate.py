"""The generate dialog (ctrl+g): a prompt, where the sounds come from, the mode and a seed."""

from __future__ import annotations

import os
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select

from loopmind.app.screens.dialog import FormDialog

MODES = ("direct", "interpret", "hybrid")


@dataclass(frozen=True)
class GenerateRequest:
    """What ``generate_song`` is asked for (the same options as ``loopmind generate``)."""

    prompt: str
    folder: str | None = None
    tag: str | None = None
    mode: str = "direct"
    seed: int = 0
    minutes: float | None = None


class GenerateModal(FormDialog[GenerateRequest | None]):
    """Returns a ``GenerateRequest``, or None when cancelled."""

    FIRST_FIELD = "#prompt"

    def __init__(self, folders: list[str], last: GenerateRequest | None = None) -> None:
        super().__init__()
        self.folders = folders
        self.last = last or GenerateRequest(prompt="")

    def compose(self) -> ComposeResult:
        last = self.last
        options = [(os.path.basename(f.rstrip(os.sep)) or f, f) for f in self.folders]
        with Vertical(id="generate-box", classes="dialog"):
            yield Label("✦ Generate a song", classes="dialog-title")
            with Grid(id="generate-grid", classes="form"):
                yield Label("prompt")
                yield Input(last.prompt, placeholder="dark trap 140 in F minor", id="prompt")
                yield Label("from folder")
                yield Select(options, prompt="the whole library", id="folder",
                             value=last.folder if last.folder in self.folders else Select.NULL)
                yield Label("or tag / role")
                yield Input(last.tag or "", placeholder="e.g. warm, bass", id="tag")
                yield Label("mode")
                yield Select([(m, m) for m in MODES], value=last.mode, allow_blank=False,
                             id="mode")
                yield Label("seed")
                yield Input(str(last.seed), id="seed", type="integer")
                yield Label("minutes")
                yield Input("" if last.minutes is None else f"{last.minutes:g}",
                            placeholder="the genre's length", id="minutes", type="number")
            yield Label("", id="generate-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Generate", variant="primary", id="go")
                yield Button("Cancel", id="cancel")

    def _submit(self) -> None:
        request = self.request()
        if request is not None:
            self.dismiss(request)

    def request(self) -> GenerateRequest | None:
        """The form as a request (None, with the reason shown, when a field is wrong)."""
        error = self.query_one("#generate-error", Label)
        seed_text = self.query_one("#seed", Input).value.strip() or "0"
        minutes_text = self.query_one("#minutes", Input).value.strip()
        try:
            seed = int(seed_text)
        except ValueError:
            error.update(f"seed {seed_text!r} is not a whole number")
            return None
        try:
            minutes = float(minutes_text) if minutes_text else None
        except ValueError:
            error.update(f"minutes {minutes_text!r} is not a number")
            return None
        folder = self.query_one("#folder", Select).value
        tag = self.query_one("#tag", Input).value.strip() or None
        folder = None if folder is Select.NULL else str(folder)
        if folder and tag:
            error.update("pick a folder or a tag, not both")
            return None
        mode = str(self.query_one("#mode", Select).value)
        return GenerateRequest(prompt=self.query_one("#prompt", Input).value.strip(),
                               folder=folder, tag=tag, mode=mode, seed=seed, minutes=minutes)
