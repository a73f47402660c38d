"""What grows with time stays bounded (issue 15: memory flat over a day, bench/soak.py).
Lengths and counts only: no timing, no RSS threshold."""

from __future__ import annotations

import gc

from apphelpers import frozen_demo, settle

from cockpit.crashlog import TOLD_KEPT, Once
from cockpit.drill.demo import demo_config
from cockpit.model import TIMELINE_KEPT, Level, RecentLines, TimelineEvent
from screens.app import CockpitApp
from screens.panels import TimelinePane


def line(i: int) -> TimelineEvent:
    return TimelineEvent(1000.0 + i, "status", f"line {i}", Level.OK, payload={"id": f"ev{i}"})


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


def test_recent_lines_keep_the_newest_and_count_every_one():
    lines = RecentLines(keep=50)
    taken = 0
    got: list[TimelineEvent] = []
    for i in range(1000):
        lines.append(line(i))
        if i % 7 == 0:  # a reader taking what is new now and then, as the pane does
            new, taken = lines.since(taken)
            got += new
        assert len(lines) <= 50
    assert len(lines) == 50 and lines.total == 1000 and lines.dropped == 950
    assert [ev.text for ev in lines][0] == "line 950" and lines[-1].text == "line 999"
    new, taken = lines.since(taken)
    got += new
    assert taken == 1000
    assert [ev.text for ev in got] == [f"line {i}" for i in range(1000)]  # a reader keeping up misses nothing
    behind, total = lines.since(100)  # one that fell behind gets what is still kept
    assert len(behind) == 50 and total == 1000


def test_errors_told_once_are_remembered_up_to_a_bound():
    told = Once()
    assert told.first(("poll", "ValueError", "x")) and not told.first(("poll", "ValueError", "x"))
    for i in range(5 * TOLD_KEPT):  # a message that changes every time (a count, a time)
        assert told.first(("refresh", "KeyError", f"row {i}"))
        assert len(told) <= TOLD_KEPT
    assert ("refresh", "KeyError", f"row {5 * TOLD_KEPT - 1}") in told


async def test_the_app_keeps_the_newest_timeline_lines_and_says_older_ones_are_in_the_journal():
    server, clock = frozen_demo()
    app = CockpitApp(demo_config(server.url), mode="DEMO", clock=clock, poll=False, simulator=server)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.screen.query_one(TimelinePane)
            n = 2 * TIMELINE_KEPT + 300
            for i in range(n):
                app.record(line(i))
                if i % 500 == 0:
                    app.refresh_dashboard()
            app.refresh_dashboard()
            await pilot.pause()
            ol = pane.query_one("OptionList")
            assert len(app.events) == TIMELINE_KEPT and app.events.total == n
            assert ol.option_count <= pane.MAX_SHOWN
            assert str(ol.get_option_at_index(ol.option_count - 1).prompt).endswith(f"line {n - 1}")
            assert "journal" in str(pane.border_subtitle)
            from screens.panels import TIMELINE_FILTERS

            await pilot.press(*"f" * len(TIMELINE_FILTERS))  # every filter in turn, back to all: rebuilt from what is kept
            await pilot.pause()
            assert pane.filter == "all" and ol.option_count <= TIMELINE_KEPT
            assert "journal" in str(pane.border_subtitle)
    finally:
        server.stop()


async def test_footer_keys_and_the_dialogs_widgets_are_let_go():
    """Textual kept every footer key ever built (a watcher on the footer, #6666) and the
    rendered lines of the last 1024 widgets that drew (an lru_cache, #6665)."""
    from textual._styles_cache import StylesCache
    from textual.widgets._footer import FooterKey

    server, clock = frozen_demo()
    app = CockpitApp(demo_config(server.url), mode="DEMO", clock=clock, poll=False, simulator=server)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            keys, caches = live(FooterKey), live(StylesCache)
            for _ in range(12):  # bindings change (the footer is rebuilt), a dialog opens and closes
                app.screen.refresh_bindings()
                await pilot.press("n")
                await pilot.pause()
                await pilot.press("escape")
                await pilot.pause()
            await settle(pilot)
            footer = app.screen.query_one("Footer")
            watchers = sum(len(w) for w in getattr(footer, "__watchers", {}).values())
            assert watchers <= len(footer.query(FooterKey)) + 1
            assert live(FooterKey) <= keys + 5  # was 12 more per rebuild
            assert live(StylesCache) <= caches + 40  # was a dialog's and a footer's worth more each time
    finally:
        server.stop()


async def test_timeline_lines_are_wrapped_again_when_its_scrollbar_comes():
    """Seen with Alertmanager rows: once the timeline needed a scrollbar, the lines wrapped
    before it came kept their width and the scrollbar hid their last characters
    ('severity="wa' lost its 'wa')."""
    from textual.geometry import Region

    from cockpit.model import Level, TimelineEvent

    server, clock = frozen_demo()
    app = CockpitApp(demo_config(server.url), mode="DEMO", clock=clock, poll=False, simulator=server)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.screen.query_one(TimelinePane)
            ol = pane.query_one("OptionList")
            width = ol.scrollable_content_region.width
            # each line exactly as wide as the list without a scrollbar
            texts = [f"{i:02d} " + "x" * (width - 12 - 3) for i in range(2)]
            pane.add([TimelineEvent(float(i), "note", t, Level.OK) for i, t in enumerate(texts)])
            await pilot.pause()
            assert not ol.show_vertical_scrollbar
            pane.add([TimelineEvent(10.0 + i, "note", f"line {i}", Level.OK) for i in range(60)])
            await pilot.pause()
            await pilot.pause()
            assert ol.show_vertical_scrollbar
            shown = ol.scrollable_content_region.width
            ol.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            visible = "".join(ol.render_lines(Region(0, 0, shown, 6))[y].crop(0, shown).text for y in range(6))
            for t in texts:
                assert t.split(" ", 1)[1] in visible.replace(" ", "").replace("\u00a0", ""), visible
    finally:
        server.stop()
