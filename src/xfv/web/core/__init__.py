"""Settings of the web platform."""
