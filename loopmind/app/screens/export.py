"""The export dialog (ctrl+e): where the song's master, stems, arrangement and MIDI go."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label

from loopmind.app.screens.dialog import FormDialog


@dataclass(frozen=True)
class ExportRequest:
    folder: str
    flac: bool = False


class ExportModal(FormDialog[ExportRequest | None]):
    """Returns an ``ExportRequest``, or None when cancelled."""

    FIRST_FIELD = "#folder"

    def __init__(self, folder: str, *, flac: bool = False) -> None:
        super().__init__()
        self.folder = folder
        self.flac = flac

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box", classes="dialog"):
            yield Label("⇪ Export the song", classes="dialog-title")
            yield Label("master.wav, stems/, arrangement.json and song.mid go into:",
                        classes="dialog-note")
            yield Input(self.folder, id="folder")
            yield Checkbox("also master.flac", self.flac, id="flac")
            yield Label("", id="export-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="go")
                yield Button("Cancel", id="cancel")

    def _submit(self) -> None:
        folder = self.query_one("#folder", Input).value.strip()
        if not folder:
            self.query_one("#export-error", Label).update("name a folder")
            return
        self.dismiss(ExportRequest(folder=folder,
                                   flac=self.query_one("#flac", Checkbox).value))
