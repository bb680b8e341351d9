"""One module per external service: the real adapter and its sandbox twin."""
