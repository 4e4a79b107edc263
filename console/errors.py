"""The one base of the errors fleetdeck says to a person: a one-line message and the title it goes under."""

from __future__ import annotations


class FleetdeckError(Exception):
    """A failure said in one line; `title` heads the notification (or names the failure on a terminal).

    A caller that knows better what failed gives the instance its own title (`Cannot plan`)."""

    title = "Error"

    def titled(self, title: str) -> FleetdeckError:
        """This error, said under `title`."""
        self.title = title
        return self
