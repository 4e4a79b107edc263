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
    "gpu.sort": "sort GPUs by utilisation, memory, temperature",
    "gpu.processes": "open the selected GPU's processes and fields",
    "gpu.processes.close": "close the GPU view",
    "signal.acknowledge": "acknowledge the selected signal",
    "signal.mute": "mute the selected signal's source",
}
