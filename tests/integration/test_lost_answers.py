"""A store call whose COMMIT landed but whose answer was lost with the connection is sent again whole by
`Reconnecting`: the retry must not apply it twice (messages, usage refunds), and leads its lost claim left
`in_progress` must still be sent before the campaign is `completed`. Real PostgreSQL; the connection drop is
injected right after the commit."""
from __future__ import annotations

from outreach.actors.campaign_runner import CampaignRunner, RunnerOptions
from outreach.actors.dispatchers import EmailDispatcher
from outreach.providers.sandbox import SandboxEmail, SandboxOutcomes
from outreach.storage import runs
from outreach.storage.run_store import PgRunStore, Reconnecting, RedisEventSink
from tests.integration.test_runner import WEEKDAY_NOON, FixedClock, campaign_with_leads

LEADS = 12


class AnswerLostOnce(PgRunStore):
    """The first `lose` call (with attempts, for outcomes) commits, then its connection drops before the answer."""

    def __init__(self, pool, campaign_id, lose: str):
        super().__init__(pool, campaign_id)
        self.lose, self.lost = lose, False

    async def claim_leads(self, after, size: int, now) -> list[dict]:
        claimed = await super().claim_leads(after, size, now)
        self._drop_answer("claim_leads", bool(claimed))
        return claimed

    async def record_outcomes(self, batch) -> None:
        await super().record_outcomes(batch)
        self._drop_answer("record_outcomes", bool(batch.attempt_leads))

    def _drop_answer(self, name: str, worth_losing: bool) -> None:
        if name == self.lose and worth_losing and not self.lost:
            self.lost = True
            raise ConnectionResetError("connection reset after the commit, before the answer")


async def no_wait(_seconds: float) -> None:
    return None


async def run_losing(api, pool, redis, lose: str, mix: dict) -> tuple[str, dict, AnswerLostOnce]:
    campaign_id, _ = await campaign_with_leads(api, pool, LEADS)
    store = AnswerLostOnce(pool, campaign_id, lose)
    dispatchers = {"email": EmailDispatcher(SandboxEmail(SandboxOutcomes("email", mix=mix)), "Sales <s@example.com>")}
    runner = CampaignRunner(campaign_id, Reconnecting(store, "test", sleep=no_wait), RedisEventSink(redis, campaign_id),
                            dispatchers, RunnerOptions(batch_size=4), clock=FixedClock(WEEKDAY_NOON))
    summary = await runner.run()
    assert store.lost, f"no {lose} answer was lost: the test proved nothing"
    return campaign_id, summary, store


async def test_outcomes_recorded_again_after_a_lost_answer_are_applied_once(api, pool, redis):
    await pool.execute("INSERT INTO usage (org_id, month, emails) VALUES ($1, $2, 100)", api.org_id, runs.month_start())
    campaign_id, summary, _ = await run_losing(api, pool, redis, "record_outcomes", {"sent": 0.5, "bounced": 0.5})
    sent = summary["counts"]["succeeded"]
    assert summary["status"] == "completed" and summary["counts"]["processed"] == LEADS and 0 < sent < LEADS
    per_lead = await pool.fetch("SELECT lead_id, count(*) FROM messages WHERE campaign_id = $1 GROUP BY lead_id",
                                campaign_id)
    assert len(per_lead) == LEADS and {row["count"] for row in per_lead} == {1}, "a message was logged twice"
    usage = await pool.fetchval("SELECT emails FROM usage WHERE org_id = $1", api.org_id)
    assert usage == 100 + sent, "each bounced email is refunded once"


async def test_leads_of_a_claim_whose_answer_was_lost_are_sent_before_the_campaign_completes(api, pool, redis):
    campaign_id, summary, _ = await run_losing(api, pool, redis, "claim_leads", {"sent": 1.0})
    assert summary["status"] == "completed"
    assert (summary["counts"]["succeeded"], summary["counts"]["in_progress"]) == (LEADS, 0)
    states = await pool.fetch("SELECT state::text, count(*) FROM campaign_leads WHERE campaign_id = $1 GROUP BY 1",
                              campaign_id)
    assert {row["state"]: row["count"] for row in states} == {"sent": LEADS}
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == LEADS
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE campaign_id = $1", campaign_id) == LEADS
