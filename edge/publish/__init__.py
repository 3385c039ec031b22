"""Publishing: MQTT topics, Home Assistant discovery and the command schema."""
