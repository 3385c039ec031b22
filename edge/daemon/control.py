"""The control plane: ``…/cmd`` messages → the command table
(:data:`edge.publish.commands.COMMANDS`) → its handler, run on the thread the table
names → the state it changes → the answer on ``…/events``.

Signals come in here too: SIGHUP is a calibration reload served on the main thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge.daemon.base import SourceStatus, StageStats
from edge.daemon.calibration import Calibration
from edge.daemon.stages import MoodWorker
from edge.daemon.state import State
from edge.daemon.tracks import TracksWorker
from edge.lograte import RepeatLog
from edge.music.recommend import Policy
from edge.publish.commands import COMMANDS, MAIN, NOW, Command, CommandError, Spec, parse_command
from edge.publish.payloads import event_payload, status_result

log = logging.getLogger(__name__)

#: Commands that add rows on disk (``played``, ``feedback``: ``rate_limited`` in the
#: table) are taken WRITE_BURST at once, then WRITE_RATE_S a second; beyond, answered
#: "busy".  One bucket for all clients: MQTT 3.1.1 does not say who published a message
#: (the broker's ACL is what separates clients).  A player sends one ``played`` a track.
WRITE_BURST = 30
WRITE_RATE_S = 1.0
MAIN_QUEUE = 64  # jobs waiting for the main thread (calibration reloads)


class TokenBucket:
    """``take()`` is True at most ``burst`` times at once, then ``rate`` times a second."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens, self._t = float(burst), clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
            self._t = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


class Events:
    """Publishes answers on ``…/events``; ``hold``: once the broker is connected."""

    def __init__(self, publish: Callable[[str, dict[str, Any]], None],
                 connected: Callable[[], bool]) -> None:
        self.publish, self.connected = publish, connected
        self._held: list[dict[str, Any]] = []
        # a client sending bad commands in a loop must not flood the journal: the first
        # is logged, then a count (with the latest) a minute; each is answered anyway
        self._rejected = RepeatLog(log, level=logging.INFO)

    def __call__(self, ident: Any, cmd: str | None, ok: bool, result: Any,
                 hold: bool = False, **extra: Any) -> None:
        payload = event_payload(ident, cmd, ok, result, time.time(), **extra)
        if not ok:
            self._rejected.report("rejected", "command rejected", f"{cmd or '?'}: {result}")
        if hold:
            self._held.append(payload)
        else:
            self.publish("events", payload)

    def release(self) -> None:
        """Publish the held answers if the broker is connected (main thread)."""
        if self._held and self.connected():
            held, self._held = self._held, []
            for payload in held:
                self.publish("events", payload)


class DaemonControl:
    """What the command handlers change (:class:`edge.publish.commands.Control`)."""

    def __init__(self, state: State, status: SourceStatus, calibration: Calibration,
                 connected: Callable[[], bool]) -> None:
        self.state, self.sources, self.calibration = state, status, calibration
        self.connected = connected
        self.tracks: TracksWorker | None = None  # set by the wiring
        self.mood: MoodWorker | None = None  # set by the wiring

    def pause(self, what: Sequence[str], pause: bool) -> dict[str, Any]:
        result = self.state.pause(what, pause)
        if pause and "camera" in what and self.mood is not None:
            self.mood.forget_faces()
        return result

    def status(self) -> dict[str, Any]:
        return status_result(self.sources.snapshot(), self.state.paused_list(),
                             self.state.policy, self.calibration.stats(), self.connected())

    def set_playback(self, state: str) -> dict[str, Any]:
        result = self.state.set_playback(state, time.time())
        if self.mood is not None:
            self.mood.set_music(self.state.music_playing())
        return result

    def set_heard(self, heard: bool) -> None:
        """The microphone started or stopped hearing music (on the speech thread)."""
        self.state.set_heard(heard, time.time())
        if self.mood is not None:
            self.mood.set_music(self.state.music_playing())

    def reload_calibration(self, trigger: str, ident: Any) -> bool:
        return self.calibration.reload(trigger, ident)

    # on the recommender's thread
    def set_policy(self, policy: Policy, target: tuple[float, float] | None) -> dict[str, Any]:
        assert self.tracks is not None
        return self.tracks.set_policy(policy, target)

    def feedback(self, uri: str, kind: str) -> None:
        assert self.tracks is not None and self.tracks.recommender is not None
        self.tracks.recommender.feedback(uri, kind)

    def played(self, uri: str) -> None:
        assert self.tracks is not None and self.tracks.recommender is not None
        self.tracks.recommender.played(uri)

    def recommend_now(self) -> dict[str, Any]:
        assert self.tracks is not None
        return self.tracks.request("requested")


class Dispatcher:
    """Parses each command, answers every one, runs its handler on its thread."""

    def __init__(self, ctx: DaemonControl, events: Events, stats: StageStats) -> None:
        self.ctx, self.events, self.stats = ctx, events, stats
        # bounded: a flood of reload_calibration must not queue without end
        self._main: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=MAIN_QUEUE)
        self.writes = TokenBucket(WRITE_RATE_S, WRITE_BURST)

    def on_command(self, payload: bytes, topic: str = "cmd") -> None:
        """Called for each ``…/cmd`` message (on the MQTT thread)."""
        try:
            cmd = parse_command(payload)
        except CommandError as exc:
            self.stats.count("rejected")
            self.events(exc.id, exc.cmd, False, f"{topic}: {exc}")
            return
        self.stats.processed(0.0)
        spec = COMMANDS[cmd.cmd]
        if spec.rate_limited and not self.writes.take():
            self.stats.count("rate_limited")
            self.reply(cmd, False, f"busy: at most {WRITE_BURST} played/feedback commands "
                       f"at once, then {WRITE_RATE_S:g} a second; try again")
            return
        if spec.thread == NOW:
            self.run(spec, cmd)
        elif spec.thread == MAIN:
            if not self.on_main(lambda: self.run(spec, cmd)):
                self.reply(cmd, False, "busy: too many commands queued; try again")
        else:
            tracks = self.ctx.tracks
            if tracks is None or not tracks.is_alive():
                self.reply(cmd, False, "the recommender is not running")
            elif not tracks.submit(lambda: self._on_tracks(spec, cmd)):
                self.reply(cmd, False, "busy: too many commands queued; try again")

    def on_retained(self, payload: bytes, topic: str = "cmd") -> None:
        """A retained ``…/cmd`` message: not run (the broker would replay it at every
        start and reconnect), answered with a warning so its sender can clear it."""
        self.stats.count("retained")
        try:
            cmd = parse_command(payload)
            ident, name = cmd.id, cmd.cmd
        except CommandError as exc:
            ident, name = exc.id, exc.cmd
        log.warning("%s: ignoring a retained command (%s); publish commands without retain",
                    topic, name or "?")
        self.events(ident, name, False, f"{topic}: retained command ignored: commands are "
                    f"published without the retain flag (clear it: publish an empty retained "
                    f"message to {topic})", retained=True)

    def _on_tracks(self, spec: Spec, cmd: Command) -> None:
        if self.ctx.tracks is None or self.ctx.tracks.recommender is None:
            self.reply(cmd, False, "the music catalogue is unavailable (see stats.sources)")
        else:
            self.run(spec, cmd)

    def run(self, spec: Spec, cmd: Command) -> None:
        try:
            result = spec.handler(self.ctx, cmd)
        except ValueError as exc:  # CatalogError too
            self.reply(cmd, False, str(exc))
            return
        if result is not None:
            self.reply(cmd, True, result)

    def reply(self, cmd: Command, ok: bool, result: dict[str, Any] | str) -> None:
        self.events(cmd.id, cmd.cmd, ok, result)

    def on_main(self, job: Callable[[], None]) -> bool:
        """Run ``job`` on the main thread (file I/O, hand-over to the stages); False
        when MAIN_QUEUE jobs already wait (never blocks: a signal handler calls it)."""
        try:
            self._main.put_nowait(job)
            return True
        except queue.Full:
            return False

    def serve_main(self) -> bool:
        """On the main thread: run the jobs handed over.  True if any ran."""
        served = False
        while True:
            try:
                job = self._main.get_nowait()
            except queue.Empty:
                return served
            job()
            served = True
