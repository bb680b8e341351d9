-- Usernames each Telegram account has resolved: (user_id, access_hash) work only for the account that
-- resolved them, and Telegram rate-limits resolving, so they outlive the account's actor.
CREATE TABLE telegram_peers (
    account_id uuid NOT NULL REFERENCES telegram_accounts (id) ON DELETE CASCADE,
    username text NOT NULL,  -- lower case, without @
    user_id bigint NOT NULL,
    access_hash bigint NOT NULL,
    resolved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, username)
);
