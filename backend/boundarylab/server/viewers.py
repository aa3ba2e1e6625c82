"""A run's viewers, as the run service (service.py) keeps them: subscribing one with its
snapshot, the opt-in kinds each asks for, and telling the run's worker what someone watches
(boundary frames and unit views cost the most of a live run, so a worker makes them only
while someone takes them)."""

from __future__ import annotations

from boundarylab.engine.events import UNITS_OFF, UNITS_ON
from boundarylab.server.errors import Busy
from boundarylab.server.fanout import Viewer
from boundarylab.server.interfaces import RunFeed, Scheduler
from boundarylab.server.run import Run
from boundarylab.server.settings import Settings


class RunViewers:
    """Viewers of runs on `feed`, within the limits of `settings`; `scheduler` is told what
    each run's viewers want."""

    def __init__(self, settings: Settings, feed: RunFeed, scheduler: Scheduler) -> None:
        self.settings, self.feed, self.scheduler = settings, feed, scheduler
        self._units_on: dict[str, bool] = {}  # runs whose worker computes unit views

    def subscribe(self, run: Run, views: frozenset[str], address: str) -> Viewer:
        """A new viewer whose first item is the snapshot; errors.TooManyViewers when the run
        has its fill of viewers, in all or from `address`. `views`: the opt-in kinds
        (messages.OPT_IN_KINDS) it wants, in its snapshot too."""
        viewer = self.feed.subscribe(
            run.id,
            run.snapshot_text(views),
            limit=self.settings.max_viewers_per_run,
            ended=run.done,
            views=views,
            address=address,
            per_address=self.settings.max_viewers_per_address,
        )
        self._units_changed(run)
        self.frames_wanted(run)
        return viewer

    def unsubscribe(self, run: Run, viewer: Viewer) -> None:
        self.feed.unsubscribe(run.id, viewer)
        if not self.feed.viewers(run.id):
            run.drop_snapshots()  # a finished run's shared snapshot lives while it is watched
        self._units_changed(run)
        self.frames_wanted(run)

    def set_views(self, run: Run, viewer: Viewer, views: frozenset[str]) -> None:
        """A viewer asks for other opt-in kinds; a kind it newly asks for starts with the
        run's latest message of that kind."""
        added = views - viewer.views
        viewer.views = views
        for kind in added:
            if kind in run.latest:
                viewer.put(run.latest[kind], conflate=kind)
        self._units_changed(run)

    def run_ended(self, run: Run) -> None:
        self._units_on.pop(run.id, None)

    def _units_changed(self, run: Run) -> None:
        """Tell the run's worker to compute unit views only while some viewer wants them
        (a forward pass per frame that no one else should pay for)."""
        wanted = self.feed.viewers_of(run.id, "units") > 0
        # A queued run has no worker to tell yet: the page asks again once it runs.
        if run.done or run.status == "queued" or wanted == self._units_on.get(run.id, False):
            return
        try:
            self.scheduler.control(run.id, UNITS_ON if wanted else UNITS_OFF)
        except Busy:  # its worker is behind on commands: the next (un)subscribe asks again
            return
        self._units_on[run.id] = wanted

    def frames_wanted(self, run: Run) -> None:
        """Boundary frames cost the most of a live run: its worker makes them only while
        someone watches (the first and the last are always made, for the snapshot)."""
        if not run.done:
            self.scheduler.frames(run.id, self.feed.viewers(run.id) > 0)
