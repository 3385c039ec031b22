#!/usr/bin/env bash
# Install MoodEdge as a systemd service on a Raspberry Pi (Raspberry Pi OS bookworm).
#   sudo systemd/install.sh            # from a checkout of the repository
# What it does (idempotent; re-run to upgrade):
#   - apt: python3-venv, PortAudio, libsndfile, and python3-picamera2 for the Pi camera
#   - a system user 'moodedge' in the audio and video groups
#   - a venv at /opt/moodedge/venv made with --system-site-packages (so apt's picamera2
#     and libcamera bindings are importable) and this checkout installed into it
#   - /etc/moodedge/config.toml from 'edge-cli config example' if there is none
#   - the unit moodedge.service, enabled and started
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=${MOODEDGE_PREFIX:-/opt/moodedge}
UNIT=/etc/systemd/system/moodedge.service
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }

echo "== apt packages"
apt-get update -qq
apt-get install -y -qq python3-venv python3-pip libportaudio2 libsndfile1 >/dev/null
if apt-cache show python3-picamera2 >/dev/null 2>&1; then
  apt-get install -y -qq python3-picamera2 >/dev/null || echo "warning: python3-picamera2 not installed"
fi

echo "== user moodedge (groups audio, video)"
id moodedge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/moodedge --no-create-home \
  --shell /usr/sbin/nologin moodedge
usermod -a -G audio,video moodedge

echo "== venv $PREFIX/venv (--system-site-packages, for apt's picamera2)"
mkdir -p "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --upgrade pip
# Keep apt's NumPy (picamera2 and its apt dependencies are built against it): pin the
# venv to it, so pip picks the newest OpenCV 4.x that still supports NumPy 1.x (4.11)
# instead of pulling NumPy 2 over it.
CONSTRAINTS=$(mktemp)
if "$PREFIX/venv/bin/python" -c 'import numpy' 2>/dev/null; then
  "$PREFIX/venv/bin/python" -c 'import numpy; print("numpy==" + numpy.__version__)' > "$CONSTRAINTS"
fi
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --prefer-binary -c "$CONSTRAINTS" "$SRC"
rm -f "$CONSTRAINTS"
# the shipped models live beside the package in a checkout; keep a copy with the venv
mkdir -p "$PREFIX/models"
cp -f "$SRC"/models_tflite/*.tflite "$SRC"/models_tflite/*.json "$PREFIX/models/" 2>/dev/null || true

echo "== /etc/moodedge/config.toml"
install -d -m 0750 -o root -g moodedge /etc/moodedge
if [ ! -f /etc/moodedge/config.toml ]; then
  "$PREFIX/venv/bin/edge-cli" config example \
    | sed "s|^# speech_model = .*|speech_model = \"$PREFIX/models/speech_emotion.tflite\"|" \
    > /etc/moodedge/config.toml
  chown root:moodedge /etc/moodedge/config.toml
  chmod 0640 /etc/moodedge/config.toml
  echo "   wrote a default config: edit [mqtt] host (your broker), then: sudo systemctl restart moodedge"
fi
"$PREFIX/venv/bin/edge-cli" config check /etc/moodedge/config.toml

echo "== systemd unit"
sed "s|/opt/moodedge/venv|$PREFIX/venv|g" "$SRC/systemd/moodedge.service" > "$UNIT"
systemctl daemon-reload
systemctl enable --now moodedge.service
systemctl --no-pager --lines=5 status moodedge.service || true
echo "== done: journalctl -u moodedge -f   |   $PREFIX/venv/bin/edge-cli listen --config /etc/moodedge/config.toml"
