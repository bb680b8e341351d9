-- Trigram index behind the lead search. Embedded PostgreSQL builds may lack pg_trgm:
-- search still works there, only without this index.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available; lead search runs without its index';
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX leads_search ON leads USING gin (search_text gin_trgm_ops)';
    END IF;
END
$$;
