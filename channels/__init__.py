"""Notification delivery channels: email over SMTP, signed webhooks, SMS through an HTTP gateway."""
