"""The development stack's demo accounts: role, name, email, password.

Plain data, importable without Django, so development tools (`dev.py fuzz --running`) can
log in as them. Never loaded outside `seed_demo`.
"""

DEMO_ACCOUNTS = [
    ("admin", "Ada Admin", "admin@turnstile.test", "admin-demo-Pass-2026"),
    ("organizer", "Olive Organizer", "organizer@turnstile.test", "organizer-demo-Pass-2026"),
    ("customer", "Cam Customer", "customer@turnstile.test", "customer-demo-Pass-2026"),
]
