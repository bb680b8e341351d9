"""Outreach Runtime: a self-hostable, multi-tenant runtime for sales outreach."""
