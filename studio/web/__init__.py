"""The web server in front of the UI: sessions and sign-in, the gate every request passes, and
the routes of the studio itself (downloads, health). See ``studio.web.server``."""
