-- The whole data model. Wire keys are the camelCase of these snake_case columns.
CREATE TYPE plan AS ENUM ('free', 'starter', 'growth', 'enterprise');
CREATE TYPE campaign_status AS ENUM ('draft', 'active', 'paused', 'completed');
CREATE TYPE lead_status AS ENUM ('new', 'contacted', 'qualified', 'converted', 'rejected');
CREATE TYPE call_direction AS ENUM ('outbound', 'inbound');
CREATE TYPE call_status AS ENUM ('completed', 'failed', 'no_answer', 'voicemail', 'busy', 'in_progress');
CREATE TYPE call_sentiment AS ENUM ('positive', 'negative', 'neutral');
CREATE TYPE message_channel AS ENUM ('voice', 'telegram', 'email');
CREATE TYPE message_direction AS ENUM ('outbound', 'inbound');
CREATE TYPE message_status AS ENUM ('pending', 'sent', 'delivered', 'read', 'replied', 'failed');
CREATE TYPE number_status AS ENUM ('active', 'inactive', 'pending');
CREATE TYPE telegram_account_status AS ENUM ('warming_up', 'active', 'assigned', 'banned', 'cooldown');
CREATE TYPE channel_config_status AS ENUM ('active', 'inactive');
CREATE TYPE lead_state AS ENUM ('pending', 'in_progress', 'sent', 'failed', 'skipped', 'unknown');
CREATE TYPE org_kind AS ENUM ('personal', 'clerk', 'local');

CREATE TABLE users (
    id text PRIMARY KEY,
    email text NOT NULL DEFAULT '',
    name text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Billing and onboarding live on the organization: a team pays once, and API-key callers have no user.
CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    kind org_kind NOT NULL,
    owner_id text REFERENCES users (id) ON DELETE SET NULL,
    clerk_org_id text UNIQUE,
    plan plan NOT NULL DEFAULT 'free',
    plan_updated_at timestamptz,
    stripe_customer_id text UNIQUE,
    stripe_subscription_id text,
    onboarding_done boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_personal_owner ON organizations (owner_id) WHERE kind = 'personal';
CREATE UNIQUE INDEX organizations_local_name ON organizations (name) WHERE kind = 'local';

CREATE TABLE scripts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    content text NOT NULL DEFAULT '',
    objection_handlers jsonb NOT NULL DEFAULT '[]',
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scripts_org ON scripts (org_id, updated_at DESC);

CREATE TABLE voice_configs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL UNIQUE REFERENCES organizations (id) ON DELETE CASCADE,
    voice_id text NOT NULL DEFAULT 'olena',
    voice_name text DEFAULT 'Default Ukrainian',
    selected_voices jsonb NOT NULL DEFAULT '["olena"]',
    language text NOT NULL DEFAULT 'uk',
    personality text NOT NULL DEFAULT 'professional',
    speed real NOT NULL DEFAULT 1.0,
    is_default boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaigns (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    script_id uuid REFERENCES scripts (id) ON DELETE SET NULL,
    voice_config_id uuid REFERENCES voice_configs (id) ON DELETE SET NULL,
    status campaign_status NOT NULL DEFAULT 'draft',
    channels jsonb NOT NULL DEFAULT '["voice"]',
    channel_priority jsonb NOT NULL DEFAULT '["telegram", "voice", "email"]',
    scheduled_at timestamptz,
    settings jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_org ON campaigns (org_id, created_at DESC, id DESC);
CREATE INDEX campaigns_script ON campaigns (script_id);

CREATE TABLE phone_numbers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    number text NOT NULL UNIQUE,
    label text,
    provider text NOT NULL DEFAULT 'twilio',
    provider_sid text,
    status number_status NOT NULL DEFAULT 'active',
    campaign_id uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    max_concurrent_calls integer NOT NULL DEFAULT 1 CHECK (max_concurrent_calls > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX phone_numbers_org ON phone_numbers (org_id, created_at DESC);
CREATE INDEX phone_numbers_campaign ON phone_numbers (campaign_id);

CREATE TABLE leads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    campaign_id uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    first_name text,
    last_name text,
    phone text,
    email text,
    telegram_username text,
    company text,
    timezone text,
    metadata jsonb NOT NULL DEFAULT '{}',
    status lead_status NOT NULL DEFAULT 'new',
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One searchable string; a control character keeps a search from matching across two fields.
    search_text text GENERATED ALWAYS AS (
        coalesce(first_name, '') || chr(1) || coalesce(last_name, '') || chr(1) || coalesce(email, '')
        || chr(1) || coalesce(phone, '') || chr(1) || coalesce(company, '') || chr(1)
        || coalesce(telegram_username, '')
    ) STORED
);
CREATE INDEX leads_org ON leads (org_id, created_at DESC, id DESC);
CREATE INDEX leads_org_status ON leads (org_id, status, created_at DESC);
CREATE INDEX leads_campaign ON leads (campaign_id, created_at DESC);
CREATE INDEX leads_org_email ON leads (org_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX leads_org_phone ON leads (org_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX leads_org_telegram ON leads (org_id, lower(telegram_username)) WHERE telegram_username IS NOT NULL;

CREATE TABLE call_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    lead_id uuid REFERENCES leads (id) ON DELETE SET NULL,
    campaign_id uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    phone_number_id uuid REFERENCES phone_numbers (id) ON DELETE SET NULL,
    provider_call_id text UNIQUE,
    direction call_direction NOT NULL,
    status call_status NOT NULL DEFAULT 'in_progress',
    from_number text,
    to_number text,
    duration integer,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    transcription text,
    transcript jsonb NOT NULL DEFAULT '[]',
    summary text,
    sentiment call_sentiment,
    sentiment_score real,
    score real,
    recording_url text,
    metadata jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX call_logs_org ON call_logs (org_id, started_at DESC, id DESC);
CREATE INDEX call_logs_campaign ON call_logs (campaign_id);
CREATE INDEX call_logs_lead ON call_logs (lead_id);

CREATE TABLE messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    lead_id uuid NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    campaign_id uuid REFERENCES campaigns (id) ON DELETE SET NULL,
    channel message_channel NOT NULL,
    direction message_direction NOT NULL,
    status message_status NOT NULL,
    content text,
    metadata jsonb NOT NULL DEFAULT '{}',
    provider_id text,
    parent_id uuid REFERENCES messages (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_org_channel ON messages (org_id, channel, created_at DESC, id DESC);
CREATE INDEX messages_org_created ON messages (org_id, created_at DESC);
CREATE INDEX messages_campaign ON messages (campaign_id);
CREATE INDEX messages_lead ON messages (lead_id, created_at DESC);
CREATE INDEX messages_provider ON messages (org_id, provider_id) WHERE provider_id IS NOT NULL;

CREATE TABLE telegram_accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    phone text NOT NULL UNIQUE,
    session text NOT NULL,  -- Telethon StringSession, encrypted with the server's secret key
    display_name text,
    username text,
    status telegram_account_status NOT NULL DEFAULT 'warming_up',
    assigned_org_id uuid REFERENCES organizations (id) ON DELETE SET NULL,
    daily_message_count integer NOT NULL DEFAULT 0,
    daily_count_day date,
    max_daily_messages integer NOT NULL DEFAULT 10 CHECK (max_daily_messages >= 0),
    day_timezone text NOT NULL DEFAULT 'UTC',
    flood_wait_until timestamptz,
    last_message_at timestamptz,
    warmup_started_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_accounts_org ON telegram_accounts (assigned_org_id, created_at DESC);

CREATE TABLE channel_configs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    channel message_channel NOT NULL,
    config jsonb NOT NULL,
    status channel_config_status NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT channel_configs_org_channel_unique UNIQUE (org_id, channel)
);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    prefix text NOT NULL,
    last4 text NOT NULL DEFAULT '',
    last_used_at timestamptz,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at DESC);

-- Execution state of each lead in each campaign: what the runtime claims and records.
CREATE TABLE campaign_leads (
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    lead_id uuid NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    state lead_state NOT NULL DEFAULT 'pending',
    channel message_channel,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, lead_id)
);
CREATE INDEX campaign_leads_pending ON campaign_leads (campaign_id, lead_id) WHERE state = 'pending';
CREATE INDEX campaign_leads_org ON campaign_leads (org_id);
CREATE INDEX campaign_leads_lead ON campaign_leads (lead_id);

-- One row per channel try, written before the provider is called: the guard against duplicate outreach.
CREATE TABLE attempts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    lead_id uuid NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    channel message_channel NOT NULL,
    idempotency_key text NOT NULL,
    provider_id text,
    outcome text,
    error text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT attempts_once UNIQUE (campaign_id, lead_id, channel)
);
CREATE INDEX attempts_org ON attempts (org_id, started_at DESC);
CREATE INDEX attempts_lead ON attempts (lead_id);

-- Usage counted at send time, atomically, per org per month.
CREATE TABLE usage (
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    month date NOT NULL,
    minutes integer NOT NULL DEFAULT 0,  -- per call, rounded up to the started minute
    telegram integer NOT NULL DEFAULT 0,
    emails integer NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, month)
);

CREATE TABLE webhook_events (
    provider text NOT NULL,
    event_id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
