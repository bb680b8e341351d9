"""Email routes: send to a lead, a test email to yourself, AI drafts of the sequence, and the conversation log."""
from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal
from outreach.runtime import errors, sequence_email, templates
from outreach.runtime.models import Channel
from outreach.runtime.ports import OutboundEmail, SendResult
from outreach.storage import campaigns, db, email_senders, leads, messages, runs, scripts, suppressions, token_bucket
from outreach.storage import usage, voice

log = logging.getLogger(__name__)
EMAIL_TYPES = ("initial", "followup", "final")
MAX_SUBJECT = 500
MAX_BODY = 100_000
TEST_SUBJECT = "Test email from Outreach Runtime"


def email_item(row: dict) -> dict:
    """The dashboard's "To" column reads metadata.to; the senders record toEmail. Give it both."""
    item = wire.to_wire(row)
    metadata = item["metadata"]
    if isinstance(metadata, dict) and "toEmail" in metadata and "to" not in metadata:
        item["metadata"] = {**metadata, "to": metadata["toEmail"]}
    return item


class EmailSend(validation.Model):
    lead_id: Annotated[validation.Uuid, validation.Required(validation.falsy)]
    subject: Annotated[validation.Text(one_line=True, strip=True, min_length=1, max_length=MAX_SUBJECT),
                       validation.Required(validation.falsy)]
    text: Annotated[validation.Text(max_length=MAX_BODY), validation.Required(validation.falsy), Field(alias="body")]
    to: Annotated[validation.Text(strip=True), validation.Required(validation.falsy),
                  Field(alias="toEmail", description="the lead's own email address")]
    campaign_id: Annotated[validation.Uuid, validation.Empty(validation.falsy)] = None


class EmailGenerate(validation.Model):
    type: validation.one_of(EMAIL_TYPES)
    lead_name: Annotated[validation.Text(strip=True), validation.Empty(validation.blank)] = None
    company_name: Annotated[validation.Text(strip=True), validation.Empty(validation.blank)] = None
    script_id: Annotated[validation.Uuid, validation.Empty(validation.falsy)] = None


class EmailMessagesQuery(params.PageQuery):
    limit: params.PageLimit = 50
    lead_id: Annotated[validation.Uuid, validation.Empty(validation.blank)] = None


class EmailMessage(validation.Reply):
    id: uuid.UUID
    lead_id: uuid.UUID | None
    direction: validation.one_of(("outbound", "inbound"))
    content: str
    status: str
    metadata: dict
    parent_id: uuid.UUID | None
    created_at: datetime.datetime


class EmailMessages(validation.Reply):
    messages: list[EmailMessage]
    total: int
    page: int
    limit: int


class EmailDraft(validation.Reply):
    subject: str
    body: str
    fallback: bool


class EmailSent(validation.Reply):
    success: bool
    message_id: uuid.UUID
    resend_id: str | None


class TestEmailSent(validation.Reply):
    success: bool
    to: str


@params.accepts(query=EmailMessagesQuery)
@params.answers(200, EmailMessages)
async def list_email_messages(request: web.Request) -> web.Response:
    values = params.query(request)
    page, lead_id = params.page_of(values), values["lead_id"]
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await messages.list_messages(
            conn, principal(request).org_id, Channel.EMAIL, page, lead_id=lead_id
        )
    return wire.json_response({"messages": [email_item(row) for row in rows], "total": total,
                               "page": page.number, "limit": page.limit})


# --- sending ----------------------------------------------------------------------------------------


@params.accepts(body=EmailSend)
@params.answers(200, EmailSent)
async def send_lead_email(request: web.Request) -> web.Response:
    """Only to the lead's own address, counted against the plan, logged `pending` before Resend is called."""
    fields = await params.body(request)
    org_id = principal(request).org_id
    async with db.connection(request.app[keys.DB]) as conn:
        lead = await owned_lead(conn, org_id, fields["lead_id"])
        if fields["campaign_id"] is not None and not await campaigns_owned(conn, org_id, fields["campaign_id"]):
            raise errors.Invalid("Campaign not found")
        sender = await email_senders.email_sender(conn, org_id)
    recipient = lead_address(lead, fields["to"])
    port = email_port(request)
    from_address, reply_to = sender_for(request, sender)
    month = runs.month_start()
    async with db.transaction(request.app[keys.DB]) as conn:
        await suppressions.check_lead(conn, org_id, lead["id"])  # in the transaction that decides the send
        message = await messages.start_email(conn, org_id, lead["id"], campaign_id=fields["campaign_id"],
                                             content=fields["text"],
                                             metadata={"subject": fields["subject"], "toEmail": recipient},
                                             plan_limits=request.app[keys.SETTINGS].plan_limits)
    email = OutboundEmail(from_address, recipient, reply_to, fields["subject"], fields["text"],
                          tags=(("org_id", str(org_id)),))
    result = await send_through(port, email, str(message["id"]))
    if result.outcome == "unknown":
        # Resend may have accepted it: the message stays pending and counted, and the answer says so,
        # so nobody sends it again under a new key. Its delivery webhook settles the status.
        return wire.json_response({"success": True, "messageId": message["id"], "resendId": None,
                                   "pending": True, "warning": result.error}, status=202)
    async with db.connection(request.app[keys.DB]) as conn:
        await messages.finish_email(conn, org_id, message["id"], sent=result.ok, provider_id=result.provider_id,
                                    error=None if result.ok else result.error, month=month)
    if not result.ok:
        raise errors.ProviderError(f"Failed to send email: {result.error}", **retry_detail(result.retry_after))
    return wire.json_response({"success": True, "messageId": message["id"], "resendId": result.provider_id})


async def owned_lead(conn, org_id, lead_id) -> dict:
    """Another organization's lead reads exactly like one that does not exist."""
    try:
        return await leads.get_lead(conn, org_id, lead_id)
    except errors.NotFound:
        raise errors.Invalid("Lead not found") from None


async def campaigns_owned(conn, org_id, campaign_id) -> bool:
    try:
        await campaigns.get_campaign(conn, org_id, campaign_id)
    except errors.NotFound:
        return False
    return True


def lead_address(lead: dict, to: str) -> str:
    """The lead's own address: this route is not a relay to arbitrary recipients."""
    address = (lead.get("email") or "").strip()
    if not address:
        raise errors.Invalid("Lead has no email address")
    if to.lower() != address.lower():
        raise errors.Invalid("toEmail must be the lead's email address")
    return address


@params.answers(200, TestEmailSent)
async def send_test_email(request: web.Request) -> web.Response:
    """To the signed-in user's own address, from the org's saved sender; nothing is written."""
    who = principal(request)
    recipient = await own_address(request, who)
    async with db.connection(request.app[keys.DB]) as conn:
        sender = await email_senders.email_sender(conn, who.org_id)
        await suppressions.check_address(conn, who.org_id, "email", recipient)
    if sender is None:
        raise errors.Invalid("Email not configured. Please save your email settings first.")
    port = email_port(request)
    text = (f"This is a test email from Outreach Runtime.\n\nYour email settings work: it was sent from "
            f"{sender['from']}, and replies go to {sender['reply_to']}.")
    email = OutboundEmail(sender["from"], recipient, sender["reply_to"], TEST_SUBJECT, text)
    reserved = await reserve_email(request, who.org_id)  # a test email is an email sent: counted like any other
    result = await send_through(port, email, f"test:{uuid.uuid4()}")
    if not result.ok:
        if result.outcome != "unknown":  # a lost answer may have been sent: it stays counted
            await release_email(request, who.org_id, reserved)
        raise errors.ProviderError(f"Resend error: {result.error}", **retry_detail(result.retry_after))
    return wire.json_response({"success": True, "to": recipient})


async def own_address(request: web.Request, who) -> str:
    """The session's `email` claim; else, as the original did, the user's address from Clerk's Backend API
    (CLERK_SECRET_KEY): Clerk's default session token carries no email. An API key has no user, so no address."""
    address = who.email
    clerk_users = request.app.get(keys.CLERK_USERS)
    if not address and who.user_id and clerk_users is not None:
        address = await clerk_users.email_of(who.user_id)
    if not address:
        raise errors.Invalid("No email address found on your account")
    return address


async def reserve_email(request: web.Request, org_id) -> dict:
    async with db.connection(request.app[keys.DB]) as conn:
        return await usage.reserve(conn, org_id, request.app[keys.SETTINGS].plan_limits, "email")


async def release_email(request: web.Request, org_id, reserved: dict) -> None:
    async with db.connection(request.app[keys.DB]) as conn:
        await usage.release(conn, org_id, "email", month=reserved["month"])


def email_port(request: web.Request):
    return keys.required(request, keys.EMAIL, "Email is not configured: set RESEND_API_KEY")


def sender_for(request: web.Request, sender: dict | None) -> tuple[str, str | None]:
    """The org's saved sender, else the deployment's default (OUTREACH_EMAIL_FROM)."""
    if sender is not None:
        return sender["from"], sender["reply_to"]
    default = request.app[keys.SETTINGS].email_from
    if not default:
        raise errors.NotConfigured("No email sender: save your email settings, or set OUTREACH_EMAIL_FROM")
    return default, None


async def send_through(port, email: OutboundEmail, idempotency_key: str) -> SendResult:
    """The port's answer; an exception from it is a failed send (recorded), not a 500 after a partial write.
    The subject is folded to one line here, on every send path of the API."""
    email = dataclasses.replace(email, subject=templates.one_line(email.subject))
    try:
        return await port.send_email(email, idempotency_key)
    except Exception as exc:
        log.exception("email provider raised on send")
        return SendResult("failed", error=f"email provider error: {exc}")


def retry_detail(retry_after: int | None) -> dict:
    return {"retryAfter": retry_after} if retry_after is not None else {}


# --- AI drafts ----------------------------------------------------------------------------------------


@params.accepts(body=EmailGenerate)
@params.answers(200, EmailDraft)
async def generate_email(request: web.Request) -> web.Response:
    """One email of the sequence written by OpenRouter from the org's script; no lead data is needed."""
    values = await params.body(request)
    kind, script_id = values["type"], values["script_id"]
    lead = {"name": values["lead_name"], "company": values["company_name"]}
    org_id = principal(request).org_id
    if request.app.get(keys.DRAFTER) is not None:  # OpenRouter is paid per draft: a rate per organization
        settings = request.app[keys.SETTINGS]
        bucket = token_bucket.TokenBucket(request.app[keys.REDIS], "email_generate", settings.email_generate_per_minute)
        await bucket.take(str(org_id), "email draft")
    async with db.connection(request.app[keys.DB]) as conn:
        script = await owned_script(conn, org_id, script_id)
        voice_config = await voice.get_voice_config(conn, org_id)
    context = {"script": script.get("content") or "", "objection_handlers": script.get("objection_handlers") or [],
               "voice": {"language": voice_config["language"], "personality": voice_config["personality"]}}
    return wire.json_response(await draft_or_template(request.app.get(keys.DRAFTER), kind, lead, context))


async def draft_or_template(drafter, kind: str, lead: dict, context: dict) -> dict:
    """The AI draft; the template email flagged `fallback` when OpenRouter is unset, failing or rate limited, so
    the page is never left empty (contract B52). `retryAfter` says when a draft may be asked for again."""
    language = context["voice"]["language"] or "en"
    if drafter is None:
        return sequence_email.fallback_draft(kind, lead, language, "AI drafts are not configured: set OPENROUTER_API_KEY")
    try:
        return await drafter.draft_sequence_email(kind, lead, context)
    except errors.ProviderError as exc:
        log.warning("email/generate: OpenRouter failed, answering the template email: %s", exc.message)
        return {**sequence_email.fallback_draft(kind, lead, language, exc.message),
                **retry_detail(exc.details.get("retry_after"))}


async def owned_script(conn, org_id, script_id) -> dict:
    if script_id is None:
        return {}
    try:
        return await scripts.get_script(conn, org_id, script_id)
    except errors.NotFound:
        raise errors.Invalid("Script not found") from None


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/email/messages", list_email_messages)
    router.add_post("/api/dashboard/email/send", send_lead_email)
    router.add_post("/api/dashboard/email/test", send_test_email)
    router.add_post("/api/dashboard/email/generate", generate_email)
