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

# A drill: warm, brown-amber surroundings that no one mistakes for the live cockpit,
# with the same meaning colours (success, warning, error) so levels read the same.
DRILL = Theme(
    name="cockpit-drill",
    primary="#E8A33D",
    secondary="#C77DBA",
    accent="#5FA8D3",
    foreground="#EDE3D1",
    background="#1E160C",
    surface="#2A1F12",
    panel="#3A2A16",
    success="#4FBF73",
    warning="#F2B33D",
    error="#F2545B",
    dark=True,
)

THEMES = (DARK, HIGH_CONTRAST, DRILL)
DEFAULT_THEME = DARK.name
DRILL_THEME = DRILL.name
