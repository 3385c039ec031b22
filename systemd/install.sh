#!/usr/bin/env bash
# Install MoodEdge as a systemd service on a Raspberry Pi (Raspberry Pi OS bookworm).
#   systemd/install.sh            # from a checkout: as root, or as a user with sudo (it asks)
# What it does (idempotent; re-run to upgrade):
#   - apt: python3-venv, PortAudio, libsndfile, and python3-picamera2 for the Pi camera
#   - a system user 'moodedge' in the audio and video groups
#   - a venv at /opt/moodedge/venv made with --system-site-packages (so apt's picamera2
#     and libcamera bindings are importable) and this checkout installed into it, models
#     included (package data: the daemon finds both models with no path in the config)
#   - /etc/moodedge/config.toml from 'edge-cli config example' if there is none (an
#     existing one is never touched)
#   - the unit moodedge.service, enabled and started (where systemd runs; elsewhere, e.g. in
#     a container, the unit file is written and nothing is started)
#   - then 'edge-cli doctor' on the result
# For tests and unusual layouts (the defaults are the paths above):
#   MOODEDGE_PREFIX, MOODEDGE_ETC, MOODEDGE_UNIT_DIR, MOODEDGE_USER,
#   MOODEDGE_SKIP="apt user" (leave out the apt packages and/or the user creation)
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "run as root (no sudo here): su -c '$0'" >&2; exit 1; }
  keep=$(env | sed -n 's/^\(MOODEDGE_[A-Z_]*\)=.*/\1/p' | paste -sd, -)
  exec sudo ${keep:+--preserve-env="$keep"} -- "$0" "$@"
fi
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=${MOODEDGE_PREFIX:-/opt/moodedge}
ETC=${MOODEDGE_ETC:-/etc/moodedge}
UNIT_DIR=${MOODEDGE_UNIT_DIR:-/etc/systemd/system}
USER_NAME=${MOODEDGE_USER:-moodedge}
SKIP=" ${MOODEDGE_SKIP:-} "
CONFIG="$ETC/config.toml"
EDGE_CLI="$PREFIX/venv/bin/edge-cli"
pipq() { "$PREFIX/venv/bin/pip" "$@" -q --disable-pip-version-check; }

if [[ "$SKIP" != *" apt "* ]]; then
  echo "== apt packages"
  apt-get update -qq
  apt-get install -y -qq python3-venv python3-pip libportaudio2 libsndfile1 >/dev/null
  if apt-cache show python3-picamera2 >/dev/null 2>&1; then
    apt-get install -y -qq python3-picamera2 >/dev/null || echo "warning: python3-picamera2 not installed"
  fi
fi

if [[ "$SKIP" != *" user "* ]]; then
  echo "== user $USER_NAME (groups audio, video)"
  id "$USER_NAME" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/moodedge --no-create-home \
    --shell /usr/sbin/nologin "$USER_NAME"
  usermod -a -G audio,video "$USER_NAME"
fi

echo "== venv $PREFIX/venv (--system-site-packages, for apt's picamera2)"
mkdir -p "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX/venv"
pipq install --upgrade pip
# Keep apt's NumPy (picamera2 and its apt dependencies are built against it): pin the
# venv to it, so pip picks the newest OpenCV 4.x that still supports NumPy 1.x (4.11)
# instead of pulling NumPy 2 over it.
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"; rm -rf "$SRC/build"' EXIT
if "$PREFIX/venv/bin/python" -c 'import numpy' 2>/dev/null; then
  "$PREFIX/venv/bin/python" -c 'import numpy; print("numpy==" + numpy.__version__)' > "$CONSTRAINTS"
fi
# A clean build: setuptools' build/ would carry files deleted since the last install.
rm -rf "$SRC/build"
# pip always reinstalls a local folder: code and the models (package data) are replaced.
pipq install --prefer-binary -c "$CONSTRAINTS" "$SRC"
if [ -d "$PREFIX/models" ]; then
  # Installs before the models became package data copied them here and named them in
  # the config; keep that copy current so such a config gets the upgraded models too.
  cp -f "$SRC"/models_tflite/*.tflite "$SRC"/models_tflite/*.json "$PREFIX/models/"
  echo "   updated $PREFIX/models (the daemon needs no model path in the config any more)"
fi

echo "== $CONFIG"
install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
if [ ! -f "$CONFIG" ]; then
  "$EDGE_CLI" config example \
    | sed 's|^# state_dir = "/var/lib/moodedge" |state_dir = "/var/lib/moodedge"   |' > "$CONFIG.new"
  chown root:"$USER_NAME" "$CONFIG.new"
  chmod 0640 "$CONFIG.new"
  mv "$CONFIG.new" "$CONFIG"
  echo "   wrote a default config: edit [mqtt] host (your broker), then: sudo systemctl restart moodedge"
else
  echo "   kept the existing config"
fi
"$EDGE_CLI" config check "$CONFIG"

echo "== systemd unit $UNIT_DIR/moodedge.service"
mkdir -p "$UNIT_DIR"
sed -e "s|/opt/moodedge/venv|$PREFIX/venv|g" -e "s|/etc/moodedge/config.toml|$CONFIG|g" \
  "$SRC/systemd/moodedge.service" > "$UNIT_DIR/moodedge.service"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable moodedge.service
  systemctl restart moodedge.service  # an upgrade runs the new code
  systemctl --no-pager --lines=5 status moodedge.service || true
else
  echo "   systemd is not running here: the unit is written, not started"
fi

echo "== edge-cli doctor"
if [ "$USER_NAME" != root ] && command -v runuser >/dev/null 2>&1; then
  runuser -u "$USER_NAME" -- env MOODEDGE_STATE_DIR=/var/lib/moodedge "$EDGE_CLI" doctor --config "$CONFIG" || true
else
  "$EDGE_CLI" doctor --config "$CONFIG" || true
fi
echo "== done: journalctl -u moodedge -f   |   $EDGE_CLI listen --config $CONFIG"
