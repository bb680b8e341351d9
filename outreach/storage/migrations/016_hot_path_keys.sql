-- Every attempt and every message a campaign writes checked three foreign keys, each a row lock on its parent;
-- the organization's row, locked by every concurrent batch, turned those locks into multixacts, and the checks
-- cost more than the writes themselves (bench/execute.py). The organization keys are redundant: an
-- organization's deletion already reaches its attempts through campaigns and its messages through leads
-- (both ON DELETE CASCADE, and both columns NOT NULL), and org_id is always written from the campaign's or the
-- lead's own organization. The lead and campaign keys stay: they delete or detach the rows with their parent.
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_org_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_org_id_fkey;
