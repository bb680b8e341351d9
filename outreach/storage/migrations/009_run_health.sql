-- Why a run stopped by itself (a plan limit, missing configuration, a banned account): shown by
-- GET /campaigns/{id}; cleared by any status change a user makes.
ALTER TABLE campaigns ADD COLUMN status_reason text;

-- The lease of a running campaign: renewed by the campaign actor while its run lives. An `active`
-- campaign whose lease expired has nobody running it, and any API process resumes it.
CREATE TABLE campaign_leases (
    campaign_id uuid PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    holder text NOT NULL,  -- host:pid of the actor process, for operators
    expires_at timestamptz NOT NULL
);
