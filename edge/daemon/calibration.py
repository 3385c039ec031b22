"""Calibration in the daemon: the config's VAD and fusion settings with
``calibration.json`` laid over them, loaded at start and reloaded on SIGHUP or
``{"cmd": "reload_calibration"}`` (on the main thread), then handed to the running
speech and fusion stages, which apply them between items.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge import calibrate as C
from edge.audio.vad import VadParams
from edge.config import Config
from edge.mood.fusion import FusionParams

log = logging.getLogger(__name__)


# What each model's calibration steps set: the speech model's the VAD (its room levels are
# the model's own frames, its no-speech threshold the model's output) and the voice's
# baseline; the face model's the face's baseline.
MODEL_PARTS = {"speech": ("vad", "voice"), "face": (None, "face")}


def without_stale(cal: C.Calibration, running: dict[str, str | None]
                  ) -> tuple[C.Calibration, tuple[str, ...]]:
    """``cal`` without what it measured through another model than the one running
    (``running``: modality -> sha256, None when unknown), and which models those were.
    A calibration that recorded no model is taken as it is."""
    stale = tuple(m for m, sha in sorted(cal.models.items())
                  if running.get(m) is not None and running[m] != sha)
    if not stale:
        return cal, ()
    vad, offsets, reliability = dict(cal.vad), dict(cal.offsets), dict(cal.reliability)
    for m in stale:
        vad_part, modality = MODEL_PARTS[m]
        if vad_part:
            vad.clear()
        offsets.pop(modality, None)
        reliability.pop(modality, None)
    return replace(cal, vad=vad, offsets=offsets, reliability=reliability), stale


@dataclass(frozen=True)
class Calibrated:
    """What the pipeline runs with: the config's VAD and fusion settings with the
    calibration laid over them (``calibration`` None: the config's alone)."""

    vad: VadParams
    fusion: FusionParams
    calibration: C.Calibration | None = None
    created: datetime | None = None  # aware; a naive ``created`` is taken as local time
    stale: tuple[str, ...] = ()  # models the calibration was made with that no longer run

    @classmethod
    def of(cls, config: Config, cal: C.Calibration | None, where: str = C.FILE_NAME,
           models: dict[str, str | None] | None = None) -> Calibrated:
        """Defaults < the TOML file < the calibration, key by key: the calibration's VAD
        threshold, and its offset and reliability for each modality it measured, replace
        the config's; everything else stays, and so does what the calibration measured
        through another model than ``models`` (modality -> sha256) runs.
        CalibrationError when a value does not fit."""
        vad, fusion = config.audio.vad, config.fusion
        if cal is None:
            return cls(vad, fusion)
        cal, stale = without_stale(cal, models or {})
        try:
            created = datetime.fromisoformat(cal.created)
            vad = replace(vad, **{k: float(v) for k, v in cal.vad.items()})  # threshold_db,
            # no_speech_threshold (both checked by calibrate.parse_calibration)
            offsets = {m: (float(v), float(a)) for m, (v, a) in cal.offsets.items()}
            reliability = {m: float(r) for m, r in cal.reliability.items()}
            fusion = replace(
                fusion, calibration_offset={**fusion.calibration_offset, **offsets},
                reliability={**fusion.reliability, **reliability})
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            raise C.CalibrationError(f"{where}: {exc}") from None
        return cls(vad, fusion, cal, created if created.tzinfo else created.astimezone(), stale)

    @classmethod
    def load(cls, config: Config, state_dir: Path,
             models: dict[str, str | None] | None = None) -> Calibrated:
        """From ``<state_dir>/calibration.json`` (absent: the config's settings)."""
        where = str(state_dir / C.FILE_NAME)
        try:
            cal = C.load_calibration(state_dir)
        except (OSError, ValueError, TypeError, AttributeError, OverflowError) as exc:  # past its checks
            raise C.CalibrationError(f"{where}: {exc}") from None
        return cls.of(config, cal, where, models)

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """The ``calibration`` object of ``…/stats``: when, and the settings in effect."""
        created = self.created
        return {
            "calibrated_at": created.astimezone(UTC).isoformat(timespec="seconds")
            if created else None,
            "age_s": round(C.age_s(self.calibration, now), 1) if self.calibration else None,
            "vad_threshold_db": self.vad.threshold_db,
            "offsets": {m: list(self.fusion.offset_of(m))
                        for m in sorted(self.fusion.calibration_offset)},
            "reliability": {m: self.fusion.reliability_of(m)
                            for m in sorted(self.fusion.reliability)},
            "stale_models": list(self.stale),
        }


class Calibration:
    """The calibration in effect and why the last load failed; answers every (re)load
    with ``event(ident, "reload_calibration", ok, result, hold=..., trigger=...)``.

    ``apply(calibrated)`` hands new settings to the running stages (set by the wiring)."""

    def __init__(self, config: Config, state_dir: Path, event: Callable[..., None],
                 models: dict[str, str | None] | None = None) -> None:
        self.config, self.state_dir, self.event = config, state_dir, event
        self.models = models or {}  # modality -> sha256 of the model running
        self.apply: Callable[[Calibrated], None] = lambda c: None
        self.error: str | None = None
        try:
            self.current = Calibrated.load(config, state_dir, self.models)
        except C.CalibrationError as exc:
            self.current = Calibrated.of(config, None)
            self._failed(exc, "start", None, "running uncalibrated")
        else:
            self._log()

    def reload(self, trigger: str = "call", ident: Any = None) -> bool:
        """Re-read calibration.json and hand it to the running stages; answer on events.
        A bad file keeps the calibration in use (and says why)."""
        try:
            calibrated = Calibrated.load(self.config, self.state_dir, self.models)
        except C.CalibrationError as exc:
            self._failed(exc, trigger, ident, "keeping the calibration in use")
            return False
        self.error = None
        self.current = calibrated
        self.apply(calibrated)
        self._log()
        self.event(ident, "reload_calibration", True, self.stats(), trigger=trigger)
        return True

    def stats(self) -> dict[str, Any]:
        return {**self.current.stats(), "error": self.error}

    def _failed(self, exc: Exception, trigger: str, ident: Any, doing: str) -> None:
        self.error = f"{exc}; {doing}"
        log.warning("calibration: %s", self.error)
        self.event(ident, "reload_calibration", False, self.error, hold=trigger == "start",
                   trigger=trigger)

    def _log(self) -> None:
        c = self.current.stats()
        for m in self.current.stale:
            log.warning("calibration: made with another %s model than the one running; its "
                        "%s settings are not used (run edge-cli calibrate again)", m,
                        "VAD and voice" if m == "speech" else "face")
        if c["calibrated_at"] is None:
            log.info("calibration: none in %s; using the config's settings", self.state_dir)
        else:
            log.info("calibration of %s: VAD threshold %g dBFS, offsets %s, reliability %s",
                     c["calibrated_at"], c["vad_threshold_db"], c["offsets"], c["reliability"])
