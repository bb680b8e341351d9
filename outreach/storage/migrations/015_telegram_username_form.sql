-- Telegram usernames in their one form (runtime/usernames.py): lower case, without @ and without the t.me
-- link people paste, so the do-not-contact list and replies match every lead. Leads are written in this form
-- since this migration; older rows are rewritten here (the same steps, in SQL).
UPDATE leads l SET telegram_username = c.username
FROM (
    SELECT id, nullif(lower(btrim(ltrim(btrim(substring(
               regexp_replace(btrim(telegram_username),
                              '^(https?://)?(www\.)?(t\.me|telegram\.me|telegram\.dog)/', '', 'i')
               FROM '^[^/?#]*')), '@'))), '') AS username
    FROM leads WHERE telegram_username IS NOT NULL
) c
WHERE l.id = c.id AND l.telegram_username IS DISTINCT FROM c.username;
