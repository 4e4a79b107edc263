"""The ids of every key binding, so `[keys]` in the config can remap them and be checked without a screen."""

from __future__ import annotations

import difflib
import string
from functools import cache

BINDING_IDS: dict[str, str] = {
    "pane.next": "move to the next pane",
    "pane.previous": "move to the previous pane",
    "pane.zoom1": "zoom the GPUs pane",
    "pane.zoom2": "zoom the Endpoints pane",
    "pane.zoom3": "zoom the Pins pane",
    "pane.zoom4": "zoom the Signals pane",
    "pane.unzoom": "leave the zoom; dismiss notifications",
    "app.help": "show every key",
    "app.quit": "quit",
    "gpu.sort": "sort GPUs by utilisation, memory, temperature",
    "gpu.processes": "open the selected GPU's processes and fields",
    "gpu.processes.close": "close the GPU view",
    "signal.acknowledge": "acknowledge the selected signal",
    "signal.mute": "mute the selected signal's source",
    "signal.undo": "unmute the source just muted, else make the selected signal new again",
    "route.rollback": "roll the selected route back to its stable target",
    "route.shift_toward": "shift one step of traffic toward the selected target",
    "route.shift_away": "shift one step of traffic away from the selected target",
    "route.drain": "drain the selected target",
    "route.undo": "undo the last action on the selected route",
    "signal.open": "show the selected signal in full",
    "pin.open": "show the selected pin in full",
    "pin.bump": "bump the selected pin to the version upstream names",
    "endpoint.filter": "filter the endpoints",
    "endpoint.detail": "open the selected endpoint's detail view",
}

# the order Textual writes modifiers in a key event (sorted), so a binding must use it too to match
MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")


@cache
def _key_names() -> frozenset[str]:
    """Every key name Textual reports in a key event, from its own tables."""
    # imported here: loading a config must not pull Textual in
    from textual._keyboard_protocol import FUNCTIONAL_KEYS
    from textual.keys import Keys, _character_to_key

    names = {key.value.rsplit("+", 1)[-1] for key in Keys if not key.value.startswith("<")}
    names |= set(FUNCTIONAL_KEYS.values())
    names |= {_character_to_key(c) for c in string.punctuation}
    names |= set(string.ascii_letters + string.digits)
    return frozenset(name for name in names if len(name) > 1 or name.isalnum())


@cache
def _bindable_combos() -> frozenset[str]:
    from textual.keys import Keys

    return frozenset(key.value for key in Keys)


def key_problem(keys: str) -> str | None:
    """Why a `[keys]` value (one key or several, comma-separated) cannot be bound; None when it can."""
    for key in (part.strip() for part in keys.split(",")):
        if problem := _one_key_problem(key):
            return problem
    return None


def _one_key_problem(key: str) -> str | None:
    if not key:
        return "a key is empty (write several keys as 'q,ctrl+c')"
    if any(c.isspace() for c in key):
        return f"invalid key {key!r}: no spaces inside a key (write several keys as 'q,ctrl+c')"
    if len(key) == 1:
        return None  # any single character; Textual turns it into its name
    *modifiers, name = key.split("+")
    if "" in modifiers or not name:
        return f"invalid key {key!r} (write the + key as 'plus', e.g. 'ctrl+plus')"
    for modifier in modifiers:
        if modifier not in MODIFIERS:
            close = difflib.get_close_matches(modifier, MODIFIERS, n=1)
            if close:
                fixed = "+".join(close[0] if m == modifier else m for m in modifiers) + f"+{name}"
                return f"unknown modifier {modifier!r} in {key!r} (did you mean {fixed!r}?)"
            return f"unknown modifier {modifier!r} in {key!r} (modifiers: {', '.join(MODIFIERS)})"
    if len(set(modifiers)) != len(modifiers):
        return f"a modifier is repeated in {key!r}"
    names = _key_names()
    if name not in names and key not in _bindable_combos():
        if len(name) == 1:
            from textual.keys import _character_to_key

            named = "+".join([*modifiers, _character_to_key(name)])
            return f"invalid key {key!r} (name the key: did you mean {named!r}?)"
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = (
            f"did you mean {'+'.join([*modifiers, close[0]])!r}?"
            if close
            else "e.g. q, f5, question_mark, pageup"
        )
        return f"unknown key {name!r} in {key!r} ({hint})" if modifiers else f"unknown key {name!r} ({hint})"
    if len(name) == 1 and name.isalpha() and modifiers == ["shift"]:
        return f"{key!r} would never match: a shifted letter arrives as the capital (write {name.upper()!r})"
    if len(name) == 1 and name.isupper():
        fixed = "+".join([*sorted({*modifiers, "shift"}), name.lower()])
        return f"{key!r} would never match: with a modifier, write the letter in lower case ({fixed!r})"
    if modifiers != sorted(modifiers):
        fixed = "+".join([*sorted(modifiers), name])
        return (
            f"{key!r} would never match: Textual orders modifiers as {', '.join(MODIFIERS)} (write {fixed!r})"
        )
    return None
