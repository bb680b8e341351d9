"""Plain async classes that do the work (CampaignRunner, TelegramAccount, VoiceLine); remote.py puts them on Ray."""
