"""The cockpit's stylesheet and registered Textual themes."""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

STYLESHEET = Path(__file__).with_name("cockpit.tcss")

DARK = Theme(
    name="cockpit-dark",
    primary="#5FA8D3",
    secondary="#8E7CC3",
    accent="#E8A33D",
    foreground="#D8DEE9",
    background="#0F1419",
    surface="#161D24",
    panel="#1E2730",
    success="#4FBF73",
    warning="#F2B33D",
    error="#F2545B",
    dark=True,
)

HIGH_CONTRAST = Theme(
    name="cockpit-high-contrast",
    primary="#FFFFFF",
    secondary="#00FFFF",
    accent="#FFFF00",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1A1A1A",
    boost="#333333",
    success="#00FF00",
    warning="#FFFF00",
    error="#FF3030",
    dark=True,
    text_alpha=1.0,
    luminosity_spread=0.3,
)

THEMES = (DARK, HIGH_CONTRAST)
DEFAULT_THEME = DARK.name
