"""What every form dialog shares: escape cancels, "go" or enter submits, the first field has
the focus."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Input

T = TypeVar("T")


class FormDialog(ModalScreen[T], Generic[T]):
    """A modal form. Subclasses compose it (a Button with id "go" submits) and implement
    ``_submit``, which calls ``self.dismiss(value)`` or shows what is wrong."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    FIRST_FIELD = "Input"  # CSS selector of the field focused on open

    def on_mount(self) -> None:
        self.query_one(self.FIRST_FIELD, Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "go":
            self._submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def _submit(self) -> None:
        raise NotImplementedError
