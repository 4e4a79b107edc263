"""The bottom line: the keys that work now, and the command palette's key at the right.

One widget drawing one line of text. Textual's Footer mounts a widget per key each time the focus
moves, which costs a layout pass and a repaint of the line on every Tab; this line is redrawn only
when the text it shows has changed. A key can still be clicked: it is pressed for you.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget

from widgets.textual_private import bindings_of

SEPARATOR = "▏"


class KeyLine(Widget, can_focus=False):
    DEFAULT_CSS = """
    KeyLine {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    KeyLine > .keyline--key { color: $footer-key-foreground; text-style: bold; }
    KeyLine > .keyline--description { color: $footer-description-foreground; }
    KeyLine > .keyline--separator { color: $foreground 20%; }
    """
    COMPONENT_CLASSES = {"keyline--key", "keyline--description", "keyline--separator"}

    def __init__(self) -> None:
        super().__init__()
        self._keys: tuple[tuple[str, str, str, bool], ...] = ()  # (key, shown as, description, enabled)
        self._palette: tuple[str, str, str, bool] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self._bindings_changed, self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def follow(self, screen: Screen) -> None:
        """Show the keys of the focus `screen` has now, in the same frame as the focus move; Textual
        says the bindings changed only after the next frame, which drew the line a frame late."""
        self._bindings_changed(screen)

    def _bindings_changed(self, screen: Screen) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        display = self.app.get_key_display
        active = screen.active_bindings
        keys: dict[str, tuple[str, str, str, bool]] = {}
        for key, (_node, binding, enabled, _tooltip) in active.items():
            if not binding.show:
                # a table's hidden Enter shadows the pane's "⏎ Processes", which still runs through it
                binding = next(iter(self._shadowed(screen, key)), binding)
            if binding.show and binding.action not in keys:  # one entry per action, as Footer does
                keys[binding.action] = (binding.key, display(binding), binding.description, enabled)
        shown = tuple(keys.values())
        palette = None
        if self.app.ENABLE_COMMAND_PALETTE and self.app.COMMAND_PALETTE_BINDING in active:
            _node, binding, enabled, _tooltip = active[self.app.COMMAND_PALETTE_BINDING]
            palette = (binding.key, display(binding), binding.description, enabled)
        if (shown, palette) != (self._keys, self._palette):
            self._keys, self._palette = shown, palette
            self.refresh()

    @staticmethod
    def _shadowed(screen: Screen, key: str) -> list[Binding]:
        """Shown bindings of `key` on the focused widget's ancestors, nearest first."""
        focused = screen.focused
        if focused is None:
            return []
        return [
            binding
            for node in focused.ancestors_with_self
            for binding in bindings_of(node, key)
            if binding.show
        ]

    @property
    def plain(self) -> str:
        """The line as text, for tests and snapshots of the terminal."""
        return self._line(self.size.width or 200).plain

    def _line(self, width: int) -> Text:
        key_style = self.get_component_rich_style("keyline--key", partial=True)
        description_style = self.get_component_rich_style("keyline--description", partial=True)
        separator_style = self.get_component_rich_style("keyline--separator", partial=True)

        def entry(key: str, shown: str, description: str, enabled: bool) -> Text:
            click = Style(meta={"@click": f"app.simulate_key({key!r})"})
            text = Text.assemble(
                (f" {shown} ", key_style + click), (f"{description} ", description_style + click)
            )
            if not enabled:
                text.stylize("dim")
            return text

        left = Text.assemble(*(entry(*key) for key in self._keys))
        if self._palette is None:
            left.truncate(width, overflow="ellipsis", pad=True)
            return left
        right = Text.assemble((SEPARATOR, separator_style), entry(*self._palette))
        left.truncate(max(0, width - right.cell_len), overflow="ellipsis", pad=True)
        return Text.assemble(left, right)

    def render(self) -> RenderResult:
        return self._line(self.size.width)
