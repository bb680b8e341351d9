-- Access (issue 14): who made each API key, and proven sender addresses.

-- The Clerk user who created the key (a key made with a key inherits its creator); a removed member's
-- keys are revoked by it. NULL for keys made on the command line.
ALTER TABLE api_keys ADD COLUMN created_by text;
CREATE INDEX api_keys_creator ON api_keys (org_id, created_by) WHERE created_by IS NOT NULL;

-- A claim is no longer ownership: several organizations may claim one address, and the one that proves
-- it (a confirmation link mailed to it, or its domain verified at Resend) holds it alone. Earlier claims
-- were never proven, so they stay claims.
ALTER TABLE sender_addresses DROP CONSTRAINT sender_addresses_pkey;
ALTER TABLE sender_addresses ADD PRIMARY KEY (address, org_id);
ALTER TABLE sender_addresses ADD COLUMN verified_at timestamptz;
ALTER TABLE sender_addresses ADD COLUMN verified_by text CHECK (verified_by IN ('link', 'domain'));
CREATE UNIQUE INDEX sender_addresses_proven ON sender_addresses (address) WHERE verified_at IS NOT NULL;
