"""The organizer's and the door staff's pages: events and resources, the sales dashboard,
attendees and their CSV, door staff, webhooks, and the check-in scanner."""
