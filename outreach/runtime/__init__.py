"""The core: domain models, errors, ports, pure rules and settings. No I/O here."""
