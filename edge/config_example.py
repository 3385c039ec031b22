"""The commented example config (the defaults), printed by ``edge-cli config example``;
``tests/test_config.py`` checks that it parses to the defaults."""

EXAMPLE = '''\
# MoodEdge configuration (TOML).  Every key is optional; the values shown are the
# defaults.  Check a file with:  edge-cli config check FILE
# Unknown keys, wrong types and out-of-range values are rejected at start.

[mqtt]
host = "localhost"             # a host name or IP address: no mqtt://, the port goes below
port = 1883
# device_id = "livingroom"     # default: this machine's host name
topic_prefix = "moodedge"      # topics are <topic_prefix>/<device_id>/...
# client_id = "moodedge-livingroom"
# username = "moodedge"
# The password: password = "..." here, or password_file = "/etc/moodedge/mqtt-password",
# or the MOODEDGE_MQTT_PASSWORD environment variable, or a systemd credential
# named mqtt-password (LoadCredential=mqtt-password:/etc/moodedge/mqtt-password).
keepalive_s = 30
reconnect_min_s = 1.0          # reconnect backoff: doubles from min to max
reconnect_max_s = 8.0          # so a returning broker is found within ~8 s

[mqtt.tls]
enabled = false
# ca_file = "/etc/ssl/certs/my-ca.pem"   # default: the system trust store
# cert_file = "/etc/moodedge/client.crt" # client certificate (with key_file)
# key_file = "/etc/moodedge/client.key"
insecure = false               # true skips host-name checks: test brokers only

[homeassistant]
discovery = true               # publish homeassistant/device/<device_id>/config
prefix = "homeassistant"
# name = "MoodEdge livingroom"

[audio]
enabled = true
device = ""                    # part of the microphone's name ("USB"); "" = default input
block_s = 0.1
recogniser = "edge.audio.speech:speech_recogniser"  # module:factory(model) → classify_window()
# speech_model = "/opt/moodedge/models/speech_emotion.tflite"  # default: shipped model

[audio.vad]                    # which windows count as speech
threshold_db = -75.0
min_voiced_fraction = 0.25
min_dynamic_db = 10.0
# no_speech_threshold = 0.5    # speech models with a no-speech output: default from the model

[audio.music]                  # edge.audio.music_heard: the microphone hears music (voice weighs less)
enabled = true
span_s = 10.0                  # the recent audio looked at
on_fraction = 0.6              # of its non-speech windows loud: music heard
off_fraction = 0.3             # ... at or below this: no longer heard
min_windows = 6                # non-speech windows needed before anything changes
loud_db = 25.0                 # "loud": this far above the voice threshold (audio.vad.threshold_db)

[camera]
enabled = true
backend = "auto"               # auto (picamera2, else OpenCV), picamera2, opencv
device = 0                     # OpenCV camera index
width = 640
height = 480
fps = 2.0                      # frames looked at per second
recogniser = "edge.vision.expression:face_recogniser"  # module:factory(model) → classify_frame()
# face_model = "/opt/moodedge/models/face_expression.tflite"  # default: shipped model

[face]                         # edge.vision.expression.FaceOptions: the faces in a frame
detector = "blazeface"         # blazeface (eye keypoints, the crop levelled), haar (OpenCV, no keypoints)
max_faces = 1                  # classify at most this many of the largest faces (1-16); all are counted
fusion = "largest"             # one answer from them: largest, mean, nearest_to_centre
min_face = 40                  # px: a smaller face gets no guess (face_reason "face too small")
max_yaw = 0.35                 # nose off the eyes' midpoint, in eye distances: beyond, "head turned"
max_roll = 45.0                # degrees of eye-line tilt: beyond, "head tilted"
still_frames = 4               # still frames keep the last faces, up to this many (1: look every frame)
still_threshold = 6.0          # grey levels an 8x8 block's mean may move in a still frame

[fusion]                       # edge.mood.fusion.FusionParams
half_life_s = 5.0
max_age_s = 20.0
smoothing_half_life_s = 2.0
default_reliability = 0.5
hysteresis = 0.1
neutral_radius = 0.2
evidence_prior = 1.0
music_voice_factor = 0.5       # the voice's reliability x this while the hub says music plays

[fusion.reliability]
face = 1.0
voice = 0.8

[fusion.calibration_offset]    # per-modality resting baseline [valence, arousal]
# voice = [0.0, 0.1]

[mood]
interval_s = 1.0               # how often the fused mood is computed
min_change = 0.02              # republish when valence/arousal move this much
refresh_s = 60.0               # republish at least this often

[recommender]                  # edge.music.recommend.RecommenderParams
step = 0.25
repeat_window = 50
artist_window = 3
feedback_weight = 0.3
neighbour_weight = 0.1
feedback_radius = 0.15

[tracks]
policy = "match"               # match, uplift, calm, target
# target = [0.4, -0.6]         # [valence, arousal] for policy "target"
count = 5
min_interval_s = 30.0          # never republish tracks more often than this
min_move = 0.25                # ...and only when the mood moved this far (or policy changed)
min_confidence = 0.05          # a mood this unsure never moves the music
# catalogue = "/var/lib/moodedge/catalogue.sqlite"  # default: <state_dir>/catalogue.sqlite

[stats]
interval_s = 30.0

[daemon]
# state_dir = "/var/lib/moodedge"   # default: $MOODEDGE_STATE_DIR, $STATE_DIRECTORY, ~/.local/share/moodedge
queue_size = 8                 # per stage; a slow stage drops, never blocks
retry_min_s = 1.0              # a missing/failing device is retried with this backoff
retry_max_s = 30.0
stall_s = 5.0                  # a microphone/camera silent this long is reopened
'''
