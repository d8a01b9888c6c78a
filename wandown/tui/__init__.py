"""The curses interface: rows (pure), keys (one table), theme (roles), the loop.

Start reading at loop.run; app.App holds the behaviour, render.render the drawing, and both are
tested without a terminal.
"""

from wandown.tui.app import App, Controller
from wandown.tui.loop import run

__all__ = ["App", "Controller", "run"]
