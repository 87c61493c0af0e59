"""Users service: registration, login, JWT issuing, profiles, roles, JWKS."""
