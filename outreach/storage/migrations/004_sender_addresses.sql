-- A sender address belongs to one organization: all of them send through the deployment's Resend
-- account, and inbound mail is routed to the organization that owns the address it was sent to.
CREATE TABLE sender_addresses (
    address text PRIMARY KEY,  -- lower case
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE
);
CREATE INDEX sender_addresses_org ON sender_addresses (org_id);

INSERT INTO sender_addresses (address, org_id)
SELECT DISTINCT ON (address) address, org_id
FROM (SELECT lower(config->>'fromEmail') AS address, org_id, created_at FROM channel_configs WHERE channel = 'email'
      UNION ALL
      SELECT lower(config->>'replyTo'), org_id, created_at FROM channel_configs WHERE channel = 'email') claimed
WHERE address IS NOT NULL AND address <> ''
ORDER BY address, created_at
ON CONFLICT DO NOTHING;
