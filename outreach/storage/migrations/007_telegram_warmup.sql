-- Telegram accounts warm up and pace their sends (issue 11).
-- warmup_started_on: the first day the account was active; its daily limit ramps from there (runtime/pacing.py).
--   NULL: no ramp (accounts active before warm-up existed, simulated sandbox accounts).
-- next_send_at: the earliest instant its next send may start (the day's quota spread over the sending window),
--   kept here so the spacing survives an actor restart and holds for every campaign using the account.
ALTER TABLE telegram_accounts
    ADD COLUMN warmup_started_on date,
    ADD COLUMN next_send_at timestamptz;
