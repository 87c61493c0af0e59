"""The web service: server-rendered pages for customers, organizers and door staff, talking
to the other services only through their public APIs (web_service.api)."""
