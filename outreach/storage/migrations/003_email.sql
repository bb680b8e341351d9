-- Inbound email (Resend's email.received) is matched to its organization by the recipient address,
-- compared without case against the org's email sender settings.
CREATE INDEX channel_configs_email_reply_to ON channel_configs (lower(config->>'replyTo')) WHERE channel = 'email';
CREATE INDEX channel_configs_email_from ON channel_configs (lower(config->>'fromEmail')) WHERE channel = 'email';
