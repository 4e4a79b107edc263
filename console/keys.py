"""The ids of every key binding, so `[keys]` in the config can remap them and be checked without a screen."""

BINDING_IDS: dict[str, str] = {
    "pane.next": "move to the next pane",
    "pane.previous": "move to the previous pane",
    "pane.zoom1": "zoom the GPUs pane",
    "pane.zoom2": "zoom the Endpoints pane",
    "pane.zoom3": "zoom the Pins pane",
    "pane.zoom4": "zoom the Signals pane",
    "pane.unzoom": "leave the zoomed pane",
    "app.help": "show every key",
    "app.quit": "quit",
    "signal.acknowledge": "acknowledge the selected signal",
    "signal.mute": "mute the selected signal's source",
    "route.rollback": "roll the selected route back to its stable target",
    "route.shift_toward": "shift one step of traffic toward the selected target",
    "route.shift_away": "shift one step of traffic away from the selected target",
    "route.drain": "drain the selected target",
    "route.undo": "undo the last action on the selected route",
    "signal.open": "show the selected signal in full",
    "pin.open": "show the selected pin in full",
    "pin.bump": "bump the selected pin to the version upstream names",
}
