-- Leads talk back (issue 12): the do-not-contact list, who set a lead's status, replies, and where each
-- Telegram account stopped reading its inbox.

-- An organization's do-not-contact list. Values are normalised before they are stored (storage.suppressions):
-- email lower case, phone E.164, Telegram username lower case without @.
CREATE TABLE suppressions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('email', 'phone', 'telegram')),
    value text NOT NULL,
    source text NOT NULL CHECK (source IN ('unsubscribe', 'reply', 'bounce', 'complaint', 'manual', 'import',
                                           'do_not_call')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT suppressions_once UNIQUE (org_id, type, value)
);
CREATE INDEX suppressions_org ON suppressions (org_id, created_at DESC, id DESC);

-- A status a user set by hand wins: the runtime never changes it afterwards.
ALTER TABLE leads ADD COLUMN status_set_by text;  -- the user (or API key) who set it; NULL: the runtime's
ALTER TABLE leads ADD COLUMN status_set_at timestamptz;

-- When the lead answered during this campaign (any channel); its remaining steps are stopped.
ALTER TABLE campaign_leads ADD COLUMN replied_at timestamptz;

-- The highest incoming private message id each account has handled: replies that arrived while the
-- account's actor was not running are read from there when it connects again.
CREATE TABLE telegram_inbox (
    account_id uuid PRIMARY KEY REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    last_message_id bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
