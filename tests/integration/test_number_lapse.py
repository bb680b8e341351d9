"""Numbers follow the plan: inbound calls are rejected (and count nothing) without minutes or after a lapse; a
lapsed plan's numbers are released at Twilio after the grace period by a sweeper that survives restarts."""
from __future__ import annotations

import dataclasses
import datetime
import time
import uuid
import xml.etree.ElementTree as ElementTree

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.actors.number_release import NumberReleaser
from outreach.http.app import Deps, build_app
from outreach.providers.liqpay import LiqPay
from outreach.providers.stripe import StripeBilling
from outreach.providers.voice_agent import VoiceAgent
from outreach.storage.number_release import PgNumberReleases
from tests.conftest import tenant_on
from tests.factories import insert_number, insert_usage
from tests.fakes import stripe as fake_stripe
from tests.fakes.twilio import twilio_port
from tests.integration.test_liqpay import PRIVATE_KEY, PUBLIC_KEY, callback, post_callback
from tests.integration.test_stripe_webhook import PRICES, SECRET, deliver

PUBLIC_URL = "https://outreach.example.com"
VOICE = PUBLIC_URL + "/api/webhook/twilio/voice"
NUMBER = "+14155550123"
DAY = datetime.timedelta(days=1)


class Clock:
    def __init__(self, now: datetime.datetime):
        self.current = now

    async def now(self) -> datetime.datetime:
        return self.current


@pytest.fixture
async def app(settings, pool, redis, fake_twilio, fake_agent):
    """The app as Twilio, Stripe and LiqPay reach it, with a 7-day grace period."""
    settings = dataclasses.replace(
        settings, twilio_account_sid=fake_twilio.account_sid, twilio_auth_token=fake_twilio.auth_token,
        public_url=PUBLIC_URL, voice_agent_url=fake_agent.url(), voice_agent_secret=fake_agent.secret,
        stripe_secret_key="sk_test_fake", stripe_webhook_secret=SECRET, stripe_prices=dict(PRICES),
        liqpay_public_key=PUBLIC_KEY, liqpay_private_key=PRIVATE_KEY)
    stripe = StripeBilling("sk_test_fake", SECRET, "http://127.0.0.1:9", max_network_retries=0)
    deps = Deps(pool=pool, redis=redis, twilio=twilio_port(fake_twilio), stripe=stripe,
                liqpay=LiqPay(PUBLIC_KEY, PRIVATE_KEY), voice_agent=VoiceAgent(fake_agent.url(), fake_agent.secret))
    client = TestClient(TestServer(build_app(settings, deps), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()
    await stripe.close()


async def paying_org(app, pool, fake_twilio):
    """An org on the starter plan (Stripe customer cus_A) with one number bought on Twilio."""
    api = await tenant_on(app, pool, "acme", plan="starter")
    await pool.execute("UPDATE organizations SET stripe_customer_id = 'cus_A', stripe_subscription_id = 'sub_A', "
                       "plan_updated_at = now() - interval '1 hour' WHERE id = $1", api.org_id)
    sid = fake_twilio.own(NUMBER)
    await insert_number(pool, api.org_id, number=NUMBER, provider_sid=sid)
    return api, sid


async def ring(app, fake_twilio, org_id) -> ElementTree.Element:
    url = f"{VOICE}?orgId={org_id}"
    fields = {"CallSid": "CA" + uuid.uuid4().hex, "From": "+380501112233", "To": NUMBER, "Direction": "inbound"}
    async with app.post(url.removeprefix(PUBLIC_URL), data=fields, headers=fake_twilio.signed(url, fields)) as reply:
        assert reply.status == 200 and reply.content_type == "text/xml"
        return ElementTree.fromstring(await reply.text())


def rejected(twiml: ElementTree.Element) -> bool:
    return twiml.find("Reject") is not None and twiml.find("Connect") is None


async def stripe_event(app, kind: str, status: str, price: str, age: int = 10):
    event = fake_stripe.event(kind, fake_stripe.subscription("sub_A", "cus_A", status, price),
                              created=int(time.time()) - age)
    assert (await deliver(app, event))[0] == 200


async def test_an_org_without_minutes_left_is_rejected_and_nothing_is_counted(app, pool, fake_twilio, fake_agent):
    api, _ = await paying_org(app, pool, fake_twilio)
    assert not rejected(await ring(app, fake_twilio, api.org_id))  # minutes left: connected
    month = datetime.date.today().replace(day=1)
    await pool.execute("DELETE FROM call_logs")
    await insert_usage(pool, api.org_id, month, minutes=500)  # the starter plan's 500 used
    assert rejected(await ring(app, fake_twilio, api.org_id))
    assert await pool.fetchval("SELECT count(*) FROM call_logs") == 0
    assert await pool.fetchval("SELECT minutes FROM usage WHERE org_id = $1", api.org_id) == 500
    assert len(fake_agent.calls) == 1


async def test_a_stripe_lapse_stops_the_numbers_at_once_and_a_payment_brings_them_back(app, pool, fake_twilio):
    api, _ = await paying_org(app, pool, fake_twilio)
    await stripe_event(app, "customer.subscription.deleted", "canceled", PRICES["starter"], age=20)
    [number] = (await api.get("/api/dashboard/numbers")).body["numbers"]
    release_after = datetime.datetime.fromisoformat(number["releaseAfter"].replace("Z", "+00:00"))
    assert number["status"] == "inactive"
    assert abs(release_after - (datetime.datetime.now(datetime.timezone.utc) + 7 * DAY)) < datetime.timedelta(
        minutes=1)
    assert rejected(await ring(app, fake_twilio, api.org_id))
    await stripe_event(app, "customer.subscription.created", "active", PRICES["starter"], age=5)
    [number] = (await api.get("/api/dashboard/numbers")).body["numbers"]
    assert (number["status"], number["releaseAfter"]) == ("active", None)
    assert not rejected(await ring(app, fake_twilio, api.org_id))


async def test_a_liqpay_lapse_stops_the_numbers_too(app, pool, fake_twilio):
    api, _ = await paying_org(app, pool, fake_twilio)
    await pool.execute("UPDATE organizations SET stripe_subscription_id = NULL WHERE id = $1", api.org_id)
    order_id = LiqPay.order_id(api.org_id, "starter", datetime.datetime.now(datetime.timezone.utc))
    assert (await post_callback(app, callback(order_id, "unsubscribed", payment_id=5)))[0] == 200
    [number] = (await api.get("/api/dashboard/numbers")).body["numbers"]
    assert number["status"] == "inactive" and number["releaseAfter"] is not None
    assert rejected(await ring(app, fake_twilio, api.org_id))


async def test_the_sweeper_releases_after_the_grace_period_across_restarts_and_failures(app, pool, fake_twilio):
    api, sid = await paying_org(app, pool, fake_twilio)
    other = await tenant_on(app, pool, "globex", plan="starter")
    kept = await insert_number(pool, other.org_id, number="+14155550999", provider_sid=fake_twilio.own("+14155550999"))
    await stripe_event(app, "customer.subscription.deleted", "canceled", PRICES["starter"])
    now = datetime.datetime.now(datetime.timezone.utc)
    store, port = PgNumberReleases(pool), twilio_port(fake_twilio)
    assert await NumberReleaser(store, port, Clock(now + 6 * DAY)).run() == 0  # inside the grace period
    fake_twilio.fail_next("release", 500, 20500, "An internal server error has occurred")
    clock = Clock(now + 7 * DAY + datetime.timedelta(minutes=1))
    assert await NumberReleaser(store, port, clock).run() == 0  # Twilio failed: leased, tried again later
    assert fake_twilio.released == [] and (await api.get("/api/dashboard/numbers")).body["numbers"] != []
    restarted = NumberReleaser(PgNumberReleases(pool), port, clock)  # a new process: the state is in PostgreSQL
    assert await restarted.run() == 0  # the lease of the failed attempt still holds
    clock.current += datetime.timedelta(minutes=11)
    assert await restarted.run() == 1
    assert fake_twilio.released == [sid]
    assert (await api.get("/api/dashboard/numbers")).body["numbers"] == []
    assert [row["id"] for row in (await other.get("/api/dashboard/numbers")).body["numbers"]] == [str(kept["id"])]


class PaymentDuringRelease:
    """The Twilio port, but while the sweep's first release is under way another organization pays (its Stripe
    webhook runs to the end before Twilio is asked)."""

    def __init__(self, port, pay):
        self.port, self.pay, self.paid = port, pay, False

    async def find_number(self, number: str):
        return await self.port.find_number(number)

    async def release_number(self, sid: str) -> bool:
        if not self.paid:
            self.paid = True
            await self.pay()
        return await self.port.release_number(sid)


async def test_a_payment_arriving_mid_sweep_keeps_its_number(app, pool, fake_twilio):
    api, sid = await paying_org(app, pool, fake_twilio)
    other = await tenant_on(app, pool, "globex", plan="starter")
    await pool.execute("UPDATE organizations SET stripe_customer_id = 'cus_B', stripe_subscription_id = 'sub_B', "
                       "plan_updated_at = now() - interval '1 hour' WHERE id = $1", other.org_id)
    kept = await insert_number(pool, other.org_id, number="+14155550999", provider_sid=fake_twilio.own("+14155550999"))

    async def subscription(customer: str, kind: str, status: str, age: int) -> None:
        event = fake_stripe.event(kind, fake_stripe.subscription("sub_" + customer[-1], customer, status,
                                                                 PRICES["starter"]), created=int(time.time()) - age)
        assert (await deliver(app, event))[0] == 200

    await subscription("cus_A", "customer.subscription.deleted", "canceled", 20)
    await subscription("cus_B", "customer.subscription.deleted", "canceled", 20)
    await pool.execute("UPDATE phone_numbers SET release_after = release_after + interval '1 minute' WHERE id = $1",
                       kept["id"])  # acme's number comes due first, so globex pays while it is being released
    port = PaymentDuringRelease(twilio_port(fake_twilio), lambda: subscription(
        "cus_B", "customer.subscription.updated", "active", 5))
    clock = Clock(datetime.datetime.now(datetime.timezone.utc) + 8 * DAY)
    assert await NumberReleaser(PgNumberReleases(pool), port, clock).run() == 1
    assert port.paid and fake_twilio.released == [sid]
    assert (await api.get("/api/dashboard/numbers")).body["numbers"] == []
    [number] = (await other.get("/api/dashboard/numbers")).body["numbers"]
    assert (number["id"], number["status"], number["releaseAfter"]) == (str(kept["id"]), "active", None)
