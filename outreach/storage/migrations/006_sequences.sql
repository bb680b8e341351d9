-- Campaigns that live over time: each lead's current step of the campaign's sequence and when it may fire,
-- attempts per step, and each active campaign's earliest due lead for the scheduler.

-- `due_at` '-infinity' means "due now" (a NOT NULL key keeps the claim a plain index range scan).
-- `reached`: an earlier step was sent, so the lead ends `sent` even if a later step cannot be.
-- `stopped`: why the remaining steps were ended (a reply); set on a lead in flight, applied when its step ends.
ALTER TABLE campaign_leads
    ADD COLUMN step integer NOT NULL DEFAULT 0,
    ADD COLUMN due_at timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN reached boolean NOT NULL DEFAULT false,
    ADD COLUMN stopped text;

-- Claiming due leads in (due_at, lead_id) order: a range scan of the due ones only, however many wait.
DROP INDEX IF EXISTS campaign_leads_pending;
CREATE INDEX campaign_leads_due ON campaign_leads (campaign_id, due_at, lead_id) WHERE state = 'pending';

ALTER TABLE attempts ADD COLUMN step integer NOT NULL DEFAULT 0;
ALTER TABLE attempts DROP CONSTRAINT attempts_once;
ALTER TABLE attempts ADD CONSTRAINT attempts_once UNIQUE (campaign_id, lead_id, step, channel);

-- The earliest time one of the campaign's pending leads comes due; the scheduler's only index.
ALTER TABLE campaigns ADD COLUMN next_due_at timestamptz;
CREATE INDEX campaigns_next_due ON campaigns (next_due_at) WHERE status = 'active' AND next_due_at IS NOT NULL;
