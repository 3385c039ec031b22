"""The one validated config: defaults, the example, errors with key paths, secrets."""

from __future__ import annotations

import tomllib

import pytest
from conftest import run_cli

from edge.config import EXAMPLE, Config, ConfigError, load_config, parse_config
from edge.music.recommend import Policy


def test_the_example_is_valid_and_equals_the_defaults():
    assert parse_config(tomllib.loads(EXAMPLE), env={}) == parse_config({}, env={})
    d = load_config(None, env={})
    assert (d.mqtt.host, d.mqtt.port, d.mqtt.topic_prefix) == ("localhost", 1883, "moodedge")
    assert d.audio.enabled and d.camera.enabled and d.tracks.policy is Policy.MATCH
    assert d.mqtt.device_id and d.mqtt.client_id == f"moodedge-{d.mqtt.device_id}"


def test_overrides_apply_and_are_validated():
    c = load_config(None, {"mqtt.port": 1884, "mqtt.device_id": "kitchen",
                           "mqtt.topic_prefix": "home/mood", "mqtt.host": None}, env={})
    assert c.mqtt.base_topic == "home/mood/kitchen" and c.mqtt.host == "localhost"
    with pytest.raises(ConfigError, match=r"mqtt.port: expected a value in \[1, 65535\]"):
        load_config(None, {"mqtt.port": 70000}, env={})
    with pytest.raises(ConfigError, match="mqtt.device_id: expected 1-64"):
        load_config(None, {"mqtt.device_id": "a/b"}, env={})


@pytest.mark.parametrize(("text", "message"), [
    ("[mqtt]\nprot = 1", "mqtt.prot: unknown key; expected one of"),
    ("[mqtt.tls]\nenable = true", "mqtt.tls.enable: unknown key"),
    ("[colour]\nx = 1", "colour: unknown key"),
    ("[mqtt]\nport = '1883'", "mqtt.port: expected an integer, got string '1883'"),
    ("[mqtt]\nport = true", "mqtt.port: expected an integer, got boolean"),
    ("mqtt = 3", "mqtt: expected a table"),
    ("[camera]\nfps = 0", r"camera.fps: expected a value in \[0.1, 30\]"),
    ("[camera]\nbackend = 'webcam'", "camera.backend: expected one of"),
    ("[audio.vad]\nthreshold_db = 5.0", "audio.vad: threshold_db: expected -120..0"),
    ("[fusion]\nhalf_life_s = -1.0", "fusion: FusionParams.half_life_s must be > 0"),
    ("[fusion.reliability]\nface = 1.5", "reliability"),
    ("[fusion.calibration_offset]\nvoice = [0.1]", "fusion.calibration_offset.voice: expected an array of 2"),
    ("[recommender]\nstep = 0.0", r"recommender: RecommenderParams.step must be in \(0, 3\], got 0.0"),
    # regression: these were accepted; a negative weight made a like push its track away,
    # a neutral radius or hysteresis of 1 or more froze the mood label, an offset of 2 took
    # every observation out of the valence/arousal square
    ("[recommender]\nfeedback_weight = -1.0",
     r"RecommenderParams.feedback_weight must be in \[0, 3\], got -1.0"),
    ("[recommender]\nneighbour_weight = -0.5", r"RecommenderParams.neighbour_weight must be in \[0, 3\]"),
    ("[recommender]\nstep = 9.0", r"RecommenderParams.step must be in \(0, 3\], got 9.0"),
    ("[recommender]\nrepeat_window = 100000000", r"RecommenderParams.repeat_window must be in \[0, 10000\]"),
    ("[fusion]\nneutral_radius = 5.0", r"fusion: FusionParams.neutral_radius must be in \[0, 1\], got 5.0"),
    ("[fusion]\nhysteresis = 1.5", r"fusion: FusionParams.hysteresis must be in \[0, 1\], got 1.5"),
    ("[fusion.calibration_offset]\nface = [2.0, 0.0]",
     r"fusion: FusionParams.calibration_offset\['face'\] must be \(dv, da\) in \[-1, 1\], got \[2.0, 0.0\]"),
    ("[tracks]\npolicy = 'loud'", "tracks.policy: expected one of 'match'"),
    ("[tracks]\npolicy = 'target'", "tracks.target: policy 'target' needs target"),
    ("[tracks]\ntarget = [0.1, 3.0]", r"tracks.target: expected values in \[-1, 1\]"),
    ("[mqtt]\nreconnect_min_s = 20.0\nreconnect_max_s = 5.0", "reconnect_min_s: expected <="),
    ("[mqtt]\npassword = 'x'", "mqtt.username: a password is set"),
    ("[mqtt.tls]\nenabled = true\nca_file = '/nonexistent/ca.pem'", "mqtt.tls.ca_file: file not found"),
    ("[mqtt.tls]\ncert_file = 'a.crt'", "give both cert_file and key_file"),
    ("[mqtt\nport = 1", "not valid TOML"),
    ("[face]\nmax_face = 2", r"face.max_face: unknown key; expected one of \['detector', 'fusion', "
                            r"'max_faces', 'max_roll', 'max_yaw', 'min_face', 'still_frames', "
                            r"'still_threshold'\]"),
    ("[face]\ndetector = 'yolo'", r"face: detector: expected one of \['blazeface', 'haar'\], got 'yolo'"),
    ("[face]\nmax_faces = 0", r"face: max_faces: expected 1\.\.16, got 0"),
    ("[face]\nmax_faces = 17", r"face: max_faces: expected 1\.\.16, got 17"),
    ("[face]\nmax_faces = 2.0", "face.max_faces: expected an integer, got number 2.0"),
    ("[face]\nfusion = 'vote'", r"face: fusion: expected one of \('largest', 'mean', 'nearest_to_centre'\)"),
    ("[face]\nfusion = 1", "face.fusion: expected a string, got integer 1"),
    ("[face]\nmin_face = 4", r"face: min_face: expected 8\.\.1024 pixels, got 4"),
    ("[face]\nmax_yaw = 0.0", r"face: max_yaw: expected \(0, 2\] eye distances, got 0.0"),
    ("[face]\nmax_yaw = nan", "face.max_yaw: expected a finite number, got nan"),
    ("[face]\nmax_roll = 91", r"face: max_roll: expected \(0, 90\] degrees, got 91.0"),
    ("[face]\nstill_frames = 0", r"face: still_frames: expected 1\.\.100 frames, got 0"),
    ("[face]\nstill_threshold = -1.0", r"face: still_threshold: expected 0\.\.255 grey levels, got -1.0"),
    ("face = 'many'", "face: expected a table, got string 'many'"),
])
def test_bad_files_name_the_file_the_key_and_what_was_expected(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_config(f, env={})
    assert str(e.value).startswith(f"{f}: ")


def test_the_face_section_fills_face_options_and_reaches_the_recogniser_factory(tmp_path):
    from edge.recognisers import load_recogniser
    from edge.vision.expression import FaceOptions

    assert load_config(None, env={}).face == FaceOptions()  # one face, largest: as before
    c = parse_config({"face": {"detector": "haar", "max_faces": 3, "fusion": "nearest_to_centre",
                               "min_face": 48, "max_yaw": 1, "max_roll": 30}}, env={})
    assert c.face == FaceOptions("haar", 3, "nearest_to_centre", 48, 1.0, 30.0)
    assert isinstance(c.face.max_yaw, float)
    rec, why = load_recogniser("face", c.camera.recogniser, None, c.face, FaceOptions())
    assert why == "" and rec.options == c.face
    # a stand-in factory that takes no options: fine with the defaults, refused with others
    rec, why = load_recogniser("face", "edge.demo.stub_face:factory", None, FaceOptions(), FaceOptions())
    assert why == "" and rec is not None
    rec, why = load_recogniser("face", "edge.demo.stub_face:factory", None, c.face, FaceOptions())
    assert rec is None and "takes no face options, but the config sets some" in why


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.toml")


def test_password_from_file_env_or_systemd_credential(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    c = parse_config({"mqtt": {"username": "me", "password_file": str(secret)}}, env={})
    assert c.mqtt.password == "s3cret" and "s3cret" not in repr(c)
    c = parse_config({"mqtt": {"username": "me"}}, env={"MOODEDGE_MQTT_PASSWORD": "fromenv"})
    assert c.mqtt.password == "fromenv"
    (tmp_path / "mqtt-password").write_text("cred")
    c = parse_config({"mqtt": {"username": "me"}}, env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert c.mqtt.password == "cred"
    with pytest.raises(ConfigError, match="either mqtt.password or mqtt.password_file"):
        parse_config({"mqtt": {"username": "me", "password": "a",
                               "password_file": str(secret)}}, env={})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="mqtt.password_file: .*empty"):
        parse_config({"mqtt": {"username": "me", "password_file": str(tmp_path / "empty")}},
                     env={})


def test_state_dir_precedence(tmp_path):
    c = Config()
    assert c.state_dir({"MOODEDGE_STATE_DIR": "/a", "STATE_DIRECTORY": "/b"}).as_posix() == "/a"
    assert c.state_dir({"STATE_DIRECTORY": "/b:/c"}).as_posix() == "/b"
    c = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    assert c.catalogue_path() == tmp_path / "catalogue.sqlite"


def test_cli_config_example_then_check(tmp_path):
    r = run_cli("config", "example", timeout=60)
    assert r.returncode == 0 and "[mqtt]" in r.stdout
    f = tmp_path / "c.toml"
    f.write_text(r.stdout)
    r = run_cli("config", "check", str(f), timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(f"ok: {f}")
    f.write_text("[camera]\nfps = 'fast'\n")
    r = run_cli("config", "check", str(f), timeout=60)
    assert r.returncode == 2 and f"{f}: camera.fps: expected a number" in r.stderr


def test_an_integer_too_large_for_a_float_is_a_clear_error_not_a_traceback(tmp_path):
    """Regression (issue 17): a 400-digit integer raised OverflowError in `config check`."""
    path = tmp_path / "big.toml"
    path.write_text("[audio.vad]\nthreshold_db = 1" + "0" * 400 + "\n")
    with pytest.raises(ConfigError, match=r"vad\.threshold_db: expected a finite number, got an integer"):
        load_config(path)
    res = run_cli("config", "check", str(path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "threshold_db" in res.stderr


@pytest.mark.parametrize(("host", "message"), [
    ("", r"mqtt.host: expected a host name or IP address, got ''"),
    (" ", r"mqtt.host: expected a host name or IP address, got ' '"),
    ("mqtt://homeassistant.local", r"mqtt.host: expected a host name or IP address without a scheme, "
                                   r"got 'mqtt://homeassistant.local' \(host = 'homeassistant.local'"),
    ("mqtts://broker.lan:8883/", r"without a scheme.*host = 'broker.lan'.*mqtt.tls"),
    ("homeassistant.local:1883", r"mqtt.host: the port goes in mqtt.port: host = 'homeassistant.local', "
                                 r"port = 1883"),
    ("[::1]", r"mqtt.host: an IPv6 address without brackets: host = '::1'"),
    ("192.168.1.300", r"mqtt.host: expected a host name or IP address, got '192.168.1.300'"),
    ("my broker", r"mqtt.host: expected a host name or IP address, got 'my broker'"),
    ("a..b", r"mqtt.host: expected a host name or IP address, got 'a..b'"),
])
def test_a_broker_host_that_cannot_be_one_is_refused_with_the_fix(host, message):
    """Regression: mqtt.host was any string, so `config check` said ok to '', 'mqtt://…' and
    'host:1883' (printing 'broker homeassistant.local:1883:1883'), and the daemon then retried
    a name that can never resolve, for ever."""
    with pytest.raises(ConfigError, match=message):
        parse_config({"mqtt": {"host": host}}, env={})
    with pytest.raises(ConfigError, match=message):  # --mqtt-host too
        load_config(None, {"mqtt.host": host}, env={})


@pytest.mark.parametrize("host", ["localhost", "homeassistant.local", "192.168.1.30", "::1",
                                  "fe80::1%eth0", "mqtt-broker_1.example.com", "Broker.LAN."])
def test_host_names_and_addresses_are_accepted(host):
    assert parse_config({"mqtt": {"host": host}}, env={}).mqtt.host == host


@pytest.mark.parametrize(("text", "said"), [
    ('[audio]\nrecogniser = "nonsense"\n', "audio.recogniser: no speech recogniser installed (nonsense: "),
    ('[audio]\nspeech_model = "{tmp}/gone.tflite"\n', "audio.speech_model: speech model unavailable: "),
    ('[camera]\nface_model = "{tmp}"\n', "camera.face_model: face model unavailable: "),
    ('[camera]\nrecogniser = "edge.audio.speech:speech_recogniser"\n',
     "camera.recogniser: edge.audio.speech:speech_recogniser failed to build a face recogniser "
     "(TypeError: "),
])
def test_config_check_loads_what_the_daemon_would_and_names_the_field(tmp_path, text, said):
    """Regression: `config check` said ok to a recogniser that does not import and a model
    file that does not exist; the daemon then ran without that voice or camera (a warning
    in the journal). It now loads each enabled modality as the daemon does."""
    f = tmp_path / "c.toml"
    f.write_text(text.replace("{tmp}", str(tmp_path)))
    r = run_cli("config", "check", str(f), timeout=60)
    assert r.returncode == 2, r.stdout
    assert f"error: {f}: {said}" in r.stderr and "the daemon would run without" in r.stderr
    f.write_text(text.replace("{tmp}", str(tmp_path)).replace("[audio]", "[audio]\nenabled = false")
                 .replace("[camera]", "[camera]\nenabled = false"))
    r = run_cli("config", "check", str(f), timeout=60)  # a disabled modality is not loaded
    assert r.returncode == 0 and r.stdout.startswith(f"ok: {f}"), r.stderr
