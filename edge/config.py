"""The one validated configuration: a TOML file → typed, frozen dataclasses.

Every key has a documented default (see :data:`EXAMPLE`, printed by
``edge-cli config example``), so ``edge-cli run`` works with no file at all.  A file
is validated as a whole when it is loaded: an unknown key, a wrong type or a value out
of range is a :class:`ConfigError` naming the file, the key path (``mqtt.tls.ca_file``)
and what was expected.

The fusion, voice-activity, face and recommender sections fill
:class:`edge.mood.fusion.FusionParams`, :class:`edge.audio.vad.VadParams`,
:class:`edge.vision.expression.FaceOptions` and
:class:`edge.music.recommend.RecommenderParams`; their own checks run too.  The generic
conversion (types, ranges, unknown keys) is :mod:`edge.config_types`.

Secrets: the MQTT password comes, in this order, from ``mqtt.password`` in the file,
``mqtt.password_file``, the ``MOODEDGE_MQTT_PASSWORD`` environment variable, or a
systemd credential named ``mqtt-password`` (``$CREDENTIALS_DIRECTORY``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.audio.music_heard import MusicHeardParams
from edge.audio.vad import VadParams
from edge.config_example import EXAMPLE  # noqa: F401 - edge.config.EXAMPLE, as before
from edge.config_types import ConfigError, build, choices, ranged
from edge.mood.fusion import FusionParams
from edge.music.recommend import Policy, RecommenderParams
from edge.paths import default_state_dir
from edge.vision.expression import FaceOptions

PASSWORD_ENV = "MOODEDGE_MQTT_PASSWORD"
CREDENTIAL_NAME = "mqtt-password"
_TOPIC_PART = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


# --------------------------------------------------------------------------------------
# Sections.  Field metadata carries ranges/choices; the loader checks them generically.


@dataclass(frozen=True)
class TlsConfig:
    enabled: bool = False
    ca_file: Path | None = None  # None: the system's trust store
    cert_file: Path | None = None  # client certificate (mutual TLS)
    key_file: Path | None = None
    insecure: bool = False  # skip host-name verification (self-signed test brokers only)


@dataclass(frozen=True)
class MqttConfig:
    host: str = "localhost"
    port: int = field(default=1883, metadata=ranged(1, 65535))
    device_id: str = ""  # "" → the host name (see default_device_id)
    topic_prefix: str = "moodedge"
    client_id: str = ""  # "" → "moodedge-<device_id>"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    keepalive_s: int = field(default=30, metadata=ranged(5, 3600))
    reconnect_min_s: float = field(default=1.0, metadata=ranged(0.1, 60))
    reconnect_max_s: float = field(default=8.0, metadata=ranged(1, 3600))
    tls: TlsConfig = field(default_factory=TlsConfig)

    @property
    def base_topic(self) -> str:
        return f"{self.topic_prefix}/{self.device_id}"


@dataclass(frozen=True)
class HomeAssistantConfig:
    discovery: bool = True
    prefix: str = "homeassistant"
    name: str = ""  # "" → "MoodEdge <device_id>"


@dataclass(frozen=True)
class AudioConfig:
    enabled: bool = True
    device: str = ""  # part of the input device's name; "" → the system default
    block_s: float = field(default=0.1, metadata=ranged(0.01, 1.0))
    speech_model: Path | None = None  # None → models_tflite/speech_emotion.tflite
    # "module:factory" called with the model path (or None) → a speech recogniser.
    recogniser: str = "edge.audio.speech:speech_recogniser"
    vad: VadParams = field(default_factory=VadParams)
    music: MusicHeardParams = field(default_factory=MusicHeardParams)


@dataclass(frozen=True)
class CameraConfig:
    enabled: bool = True
    backend: str = field(default="auto", metadata=choices("auto", "picamera2", "opencv"))
    device: int = field(default=0, metadata=ranged(0, 63))  # OpenCV camera index
    width: int = field(default=640, metadata=ranged(64, 4096))
    height: int = field(default=480, metadata=ranged(48, 4096))
    fps: float = field(default=2.0, metadata=ranged(0.1, 30))
    # "module:factory" called with the model path (or None) → a FaceRecogniser.
    recogniser: str = "edge.vision.expression:face_recogniser"
    face_model: Path | None = None  # None → the recogniser's default model


@dataclass(frozen=True)
class MoodConfig:
    interval_s: float = field(default=1.0, metadata=ranged(0.1, 60))  # estimate cadence
    min_change: float = field(default=0.02, metadata=ranged(0, 2))  # A/V move to republish
    refresh_s: float = field(default=60.0, metadata=ranged(1, 3600))  # republish anyway


@dataclass(frozen=True)
class TracksConfig:
    policy: Policy = Policy.MATCH
    target: tuple[float, float] | None = None  # (valence, arousal) for policy "target"
    count: int = field(default=5, metadata=ranged(1, 50))
    min_interval_s: float = field(default=30.0, metadata=ranged(0, 86400))
    min_move: float = field(default=0.25, metadata=ranged(0, 3))
    min_confidence: float = field(default=0.05, metadata=ranged(0, 1))
    catalogue: Path | None = None  # None → <state_dir>/catalogue.sqlite (starter if empty)


@dataclass(frozen=True)
class StatsConfig:
    interval_s: float = field(default=30.0, metadata=ranged(1, 3600))


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path | None = None  # None → $MOODEDGE_STATE_DIR, $STATE_DIRECTORY or ~/.local/…
    queue_size: int = field(default=8, metadata=ranged(1, 1000))
    retry_min_s: float = field(default=1.0, metadata=ranged(0.05, 60))
    retry_max_s: float = field(default=30.0, metadata=ranged(0.1, 3600))
    stall_s: float = field(default=5.0, metadata=ranged(0.5, 600))  # a live source this quiet is failed


@dataclass(frozen=True)
class Config:
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    face: FaceOptions = field(default_factory=FaceOptions)  # what the camera path does with faces
    fusion: FusionParams = field(default_factory=FusionParams)
    mood: MoodConfig = field(default_factory=MoodConfig)
    recommender: RecommenderParams = field(default_factory=RecommenderParams)
    tracks: TracksConfig = field(default_factory=TracksConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)

    def state_dir(self, env: Mapping[str, str] | None = None) -> Path:
        """``daemon.state_dir``, else where ``edge-cli calibrate`` and the catalogue look
        (:func:`edge.paths.default_state_dir`)."""
        if self.daemon.state_dir is not None:
            return self.daemon.state_dir
        return default_state_dir(env)

    def catalogue_path(self) -> Path:
        return self.tracks.catalogue or self.state_dir() / "catalogue.sqlite"


def default_device_id() -> str:
    """The host name, lower-cased, with anything outside [a-z0-9_-] made '_'."""
    name = re.sub(r"[^a-z0-9_-]", "_", socket.gethostname().split(".")[0].lower())
    return name[:64] or "moodedge"


def check_host(host: str) -> None:
    """Refuse a broker host that no resolver can take, with the fix for the usual slips
    (a URL, ``host:port``, a bracketed IPv6 address): a DNS name, an IPv4 or IPv6 address."""
    import ipaddress
    from urllib.parse import urlsplit

    if "://" in host:
        url = urlsplit(host)
        name = url.hostname or ""
        try:
            port = url.port
        except ValueError:  # not a number
            port = None
        secure = url.scheme.lower() in ("mqtts", "ssl", "tls")
        tls = "; for TLS set [mqtt.tls] enabled = true" if secure else ""
        raise ConfigError(f"mqtt.host: expected a host name or IP address without a scheme, got {host!r} "
                          f"(host = {name!r}{f', port = {port}' if port else ''}{tls})")
    if host.startswith("[") and host.endswith("]"):
        raise ConfigError(f"mqtt.host: an IPv6 address without brackets: host = {host[1:-1]!r}")
    if ":" in host:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            return
        except ValueError:
            name, _, port = host.rpartition(":")
            if port.isdigit() and ":" not in name and name:
                raise ConfigError(f"mqtt.host: the port goes in mqtt.port: host = {name!r}, "
                                  f"port = {int(port)}") from None
    else:
        labels = (host[:-1] if host.endswith(".") else host).split(".")
        if len(host) <= 253 and all(_HOST_LABEL.match(x) for x in labels):
            if not all(x.isdigit() for x in labels):
                return
            try:
                ipaddress.IPv4Address(host)
                return
            except ValueError:
                pass
    raise ConfigError(f"mqtt.host: expected a host name or IP address, got {host!r}")


def _read_secret(path: Path, where: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc}") from None
    secret = text.strip("\r\n")
    if not secret:
        raise ConfigError(f"{where}: {path} is empty")
    return secret


def _resolve(cfg: Config, env: Mapping[str, str]) -> Config:
    """Fill derived defaults (device id, client id, password) and cross-field checks."""
    m = cfg.mqtt
    check_host(m.host)
    device_id = m.device_id or default_device_id()
    if not _DEVICE_ID.match(device_id):
        raise ConfigError(f"mqtt.device_id: expected 1-64 of [A-Za-z0-9_-], got {device_id!r}")
    if not _TOPIC_PART.match(m.topic_prefix):
        raise ConfigError(
            f"mqtt.topic_prefix: expected topic levels of [A-Za-z0-9_-] joined by '/', "
            f"got {m.topic_prefix!r}"
        )
    ha = cfg.homeassistant
    if not _TOPIC_PART.match(ha.prefix):
        raise ConfigError(f"homeassistant.prefix: expected a topic like 'homeassistant', "
                          f"got {ha.prefix!r}")
    if m.reconnect_min_s > m.reconnect_max_s:
        raise ConfigError("mqtt.reconnect_min_s: expected <= mqtt.reconnect_max_s")
    if cfg.daemon.retry_min_s > cfg.daemon.retry_max_s:
        raise ConfigError("daemon.retry_min_s: expected <= daemon.retry_max_s")
    if m.password is not None and m.password_file is not None:
        raise ConfigError("mqtt.password_file: give either mqtt.password or mqtt.password_file")
    password = m.password
    if m.password_file is not None:
        password = _read_secret(m.password_file, "mqtt.password_file")
    elif password is None and env.get(PASSWORD_ENV):
        password = env[PASSWORD_ENV]
    elif password is None and env.get("CREDENTIALS_DIRECTORY"):
        cred = Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        if cred.is_file():
            password = _read_secret(cred, f"systemd credential {CREDENTIAL_NAME}")
    if password is not None and m.username is None:
        raise ConfigError("mqtt.username: a password is set, so a username is needed")
    tls = m.tls
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConfigError("mqtt.tls.key_file: give both cert_file and key_file, or neither")
    if tls.enabled:
        for name in ("ca_file", "cert_file", "key_file"):
            p = getattr(tls, name)
            if p is not None and not p.is_file():
                raise ConfigError(f"mqtt.tls.{name}: file not found: {p}")
    t = cfg.tracks
    if t.policy is Policy.TARGET and t.target is None:
        raise ConfigError("tracks.target: policy 'target' needs target = [valence, arousal]")
    if t.target is not None and not all(-1.0 <= x <= 1.0 for x in t.target):
        raise ConfigError(f"tracks.target: expected values in [-1, 1], got {list(t.target)}")
    mqtt = dataclasses.replace(
        m, device_id=device_id, client_id=m.client_id or f"moodedge-{device_id}",
        password=password, password_file=None,
    )
    return dataclasses.replace(cfg, mqtt=mqtt)


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed TOML document (a dict) into a :class:`Config`."""
    return _resolve(build(Config, data, ""), os.environ if env is None else env)


def load_config(path: Path | str | None = None, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``path`` (None: all defaults), then apply ``overrides``.

    ``overrides`` maps dotted keys (``"mqtt.port"``) to values, e.g. from command-line
    flags; they are validated like keys in the file.
    """
    data: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: {part}: expected a table")
        node[leaf] = value
    try:
        return parse_config(data, env)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
