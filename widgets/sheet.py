"""The modal sheet every detail, plan and help screen is drawn on: centred, bordered, scrolling."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class Sheet(ModalScreen[ResultType]):
    """Subclasses change only what differs, e.g. `HelpScreen > VerticalScroll { width: 72; }`."""

    DEFAULT_CSS = """
    Sheet { align: center middle; }
    Sheet > VerticalScroll, Sheet > Vertical {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    """
