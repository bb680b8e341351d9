-- A number whose organization's plan lapsed stops being answered at once (status 'inactive') and is
-- released at Twilio once release_after has passed, by the sweeper (outreach/storage/number_release.py).
ALTER TABLE phone_numbers ADD COLUMN release_after timestamptz;
CREATE INDEX phone_numbers_release_due ON phone_numbers (release_after) WHERE release_after IS NOT NULL;
