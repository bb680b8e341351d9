"""Channel dispatchers: how a campaign's send reaches a provider (in-process, or through an entity actor)."""
from __future__ import annotations

from outreach.runtime import phones, templates
from outreach.runtime.ports import CallRequest, EmailSender, OutboundEmail, SendJob, SendResult, TelegramSender, VoiceCaller


class EmailDispatcher:
    """Email is sent from inside the campaign runner: no actor hop on the hot path."""

    def __init__(self, sender: EmailSender, from_address: str, reply_to: str | None = None, unsubscribe=None):
        """`unsubscribe(org_id, address)`: the List-Unsubscribe headers of a campaign email to `address`."""
        self.sender = sender
        self.from_address = from_address
        self.reply_to = reply_to
        self.unsubscribe = unsubscribe

    async def dispatch(self, job: SendJob) -> SendResult:
        headers = self.unsubscribe(job.org_id, job.lead["email"]) if self.unsubscribe else {}
        email = OutboundEmail(sender=self.from_address, to=job.lead["email"], reply_to=self.reply_to,
                              subject=templates.one_line(job.subject or ""), text=job.text or "", tags=(("org_id", job.org_id),),
                              headers=tuple(headers.items()))
        return await self.sender.send_email(email, job.idempotency_key, still_wanted=job.still_wanted)


class GatedEmail:
    """An email sender that starts a send only while the run can record it: while `database` says PostgreSQL
    is unreachable, a send still waiting for its turn or for a retry (nothing went out) waits for the database,
    then goes on with the same idempotency key."""

    def __init__(self, sender: EmailSender, database):
        self.sender = sender
        self.database = database  # is_reachable() and `async wait_reachable()` (storage.run_store.Reconnecting)

    async def send_email(self, email: OutboundEmail, idempotency_key: str, still_wanted=None) -> SendResult:
        while True:
            await self.database.wait_reachable()
            gated = False

            def wanted() -> bool:
                nonlocal gated
                if still_wanted is not None and not still_wanted():
                    return False
                gated = not self.database.is_reachable()
                return not gated

            result = await self.sender.send_email(email, idempotency_key, still_wanted=wanted)
            if not (gated and result.outcome == "not_sent"):
                return result


class TelegramDispatcher:
    """Sends through one sender directly (tests, sandbox without accounts)."""

    def __init__(self, sender: TelegramSender):
        self.sender = sender

    async def dispatch(self, job: SendJob) -> SendResult:
        return await self.sender.send_message(job.lead["telegram_username"], job.text or "")


class VoiceDispatcher:
    def __init__(self, caller: VoiceCaller, from_number: str = "+10000000000"):
        self.caller = caller
        self.from_number = from_number

    async def dispatch(self, job: SendJob) -> SendResult:
        return refused_destination(job) or await self.caller.place_call(call_request(job, self.from_number))


def refused_destination(job: SendJob) -> SendResult | None:
    """Only an E.164 number is dialled: a `sip:` or `client:` address (or anything else) never reaches Twilio,
    whatever a lead row holds. A lead-level failure, so the lead's next channel is tried."""
    if phones.is_e164(job.lead.get("phone")):
        return None
    return SendResult("invalid_recipient", error="The lead's phone is not an E.164 number")


def call_request(job: SendJob, from_number: str, campaign: dict | None = None) -> CallRequest:
    campaign = campaign or {}
    return CallRequest(to=job.lead["phone"], from_number=from_number, lead=job.lead,
                       script=campaign.get("script") or "", objection_handlers=campaign.get("objection_handlers") or [],
                       voice=campaign.get("voice") or {}, campaign_id=job.campaign_id, lead_id=str(job.lead["id"]))
