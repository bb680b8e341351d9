"""Lead search totals over HTTP: exact up to 10,000 matches, then a flagged floor that still covers the page."""
from __future__ import annotations

from outreach.storage import search_trigrams

BASE = "/api/dashboard/leads"
MANY = """
INSERT INTO leads (org_id, first_name, email, company, status, created_at)
SELECT $1, 'Lead' || g, 'lead' || g || '@example.com', 'Company ' || lpad((g % 50)::text, 4, '0'),
       CASE WHEN g % 10 = 0 THEN 'contacted' ELSE 'new' END::lead_status, now() - g * interval '1 second'
FROM generate_series(1, $2) AS g
"""


async def test_totals_are_exact_up_to_ten_thousand_then_capped_and_flagged(api, other, pool):
    await pool.execute(MANY, api.org_id, 12_000)
    await pool.execute(MANY, other.org_id, 300)
    first = (await api.get(BASE)).body
    assert first["pagination"] == {"page": 1, "limit": 25, "total": 10_000, "totalPages": 400, "totalCapped": True}
    assert first["leads"][0]["firstName"] == "Lead1"  # newest first
    contacted = (await api.get(f"{BASE}?status=contacted&limit=100")).body["pagination"]
    assert contacted["total"] == 1_200 and contacted["totalCapped"] is False
    company = (await api.get(f"{BASE}?search=company 0007")).body
    assert company["pagination"]["total"] == 240 and not company["pagination"]["totalCapped"]
    assert {lead["company"] for lead in company["leads"]} == {"Company 0007"}
    both = (await api.get(f"{BASE}?search=company 0010&status=contacted")).body["pagination"]
    assert both["total"] == 240 and both["totalCapped"] is False
    assert (await api.get(f"{BASE}?search=lead11999@")).body["pagination"]["total"] == 1
    assert (await other.get(f"{BASE}?search=lead11999@")).body["pagination"]["total"] == 0  # another org's lead


async def test_a_page_past_the_cap_keeps_the_total_ahead_of_it_and_the_last_page_is_exact(api, pool):
    await pool.execute(MANY, api.org_id, 12_000)
    deep = (await api.get(f"{BASE}?limit=100&page=110")).body
    assert deep["pagination"]["total"] == 11_000 and deep["pagination"]["totalCapped"] is True
    assert len(deep["leads"]) == 100
    last = (await api.get(f"{BASE}?limit=100&page=120")).body
    assert last["pagination"]["total"] == 12_000 and last["pagination"]["totalCapped"] is False
    past_end = (await api.get(f"{BASE}?limit=100&page=121")).body
    assert past_end["leads"] == [] and past_end["pagination"]["total"] == 12_000


async def test_searches_stay_exact_when_common_trigrams_are_kept_out_of_the_index_scan(api, pool):
    await pool.execute(MANY, api.org_id, 30_000)
    await pool.execute("ANALYZE leads")
    async with pool.acquire() as conn:
        common = await search_trigrams.sample_common(conn)
    assert {"com", "omp", "lea", "ead", "exa"} <= common, sorted(common)
    assert "007" not in common, sorted(common)
    search_trigrams.forget()
    for term, expected in [("company 0007", 600), ("COMPANY 0007", 600), ("lead29999@", 1), ("ead2999", 11),
                           ("company", 10_000), ("example.com", 10_000), ("y 0007", 600), ("no-such-lead", 0)]:
        pagination = (await api.get(f"{BASE}?search={term}")).body["pagination"]
        assert pagination["total"] == expected, (term, pagination)
    assert search_trigrams._kept  # the sample was taken by the searches above, and is kept
