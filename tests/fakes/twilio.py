"""A local server speaking Twilio's REST wire format (API 2010-04-01) for phone numbers and calls.

The real SDK talks to it, its base URL rewritten as PROVIDERS.md describes. It checks Basic auth,
answers list pages with exactly one non-meta key, and errors as `{"code", "message", "more_info",
"status"}`. Calls placed are kept with their form fields (repeated fields as lists) and put on
`placed`, where a test picks them up to play Twilio's status callbacks.
"""
from __future__ import annotations

import asyncio
import base64
import itertools

from aiohttp import web
from twilio.request_validator import RequestValidator

from outreach.providers.twilio import Twilio
from tests.fakes.server import LocalServer

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "twilio-test-token"
CREATED = "Tue, 24 Mar 2026 10:00:00 +0000"
INVENTORY = {
    "US": [
        {"phone_number": "+14155550101", "friendly_name": "(415) 555-0101", "locality": "San Francisco",
         "region": "CA", "capabilities": {"voice": True, "SMS": True, "MMS": True}},
        {"phone_number": "+14155550102", "friendly_name": "(415) 555-0102", "locality": "San Francisco",
         "region": "CA", "capabilities": {"voice": True, "SMS": False, "MMS": False}},
        {"phone_number": "+12125550103", "friendly_name": "(212) 555-0103", "locality": "New York",
         "region": "NY", "capabilities": {"voice": True, "SMS": True, "MMS": False}},
    ],
    "GB": [
        {"phone_number": "+442071234567", "friendly_name": "020 7123 4567", "locality": "London", "region": None,
         "capabilities": {"voice": True, "SMS": False, "MMS": False}},
    ],
}


def error_body(status: int, code: int, message: str) -> dict:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


def list_page(key: str, items: list, uri: str, page_size: int) -> dict:
    return {key: items, "end": max(len(items) - 1, 0), "first_page_uri": uri, "next_page_uri": None, "page": 0,
            "page_size": page_size, "previous_page_uri": None, "start": 0, "uri": uri}


class FakeTwilio(LocalServer):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.inventory = {country: [dict(item) for item in items] for country, items in INVENTORY.items()}
        self.owned: dict[str, dict] = {}  # sid -> incoming phone number
        self.released: list[str] = []
        self.searches: list[dict] = []
        self.calls: list[dict] = []
        self.placed: asyncio.Queue = asyncio.Queue()
        self.failures: dict[str, list[tuple[int, int, str]]] = {}
        self._ids = itertools.count(1)
        base = f"/2010-04-01/Accounts/{account_sid}"
        self.app.router.add_get(base + "/AvailablePhoneNumbers/{country}/Local.json", self.search)
        self.app.router.add_post(base + "/IncomingPhoneNumbers.json", self.buy)
        self.app.router.add_get(base + "/IncomingPhoneNumbers.json", self.list_owned)
        self.app.router.add_delete(base + "/IncomingPhoneNumbers/{sid}.json", self.release)
        self.app.router.add_post(base + "/Calls.json", self.create_call)
        self.app.middlewares.append(self.check_auth)

    # --- test controls ---------------------------------------------------------------------------

    def fail_next(self, operation: str, status: int, code: int, message: str) -> None:
        """The next `operation` (search, buy, list, release, call) answers this Twilio error."""
        self.failures.setdefault(operation, []).append((status, code, message))

    def own(self, number: str) -> str:
        """A number the account already has (bought before the test); returns its sid."""
        sid = self.new_sid("PN")
        self.owned[sid] = {"sid": sid, "phone_number": number}
        return sid

    def new_sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):032x}"

    def validator(self) -> RequestValidator:
        return RequestValidator(self.auth_token)

    def signed(self, url: str, fields: dict) -> dict:
        """Headers for a callback to `url` with `fields`, signed as Twilio signs them."""
        return {"X-Twilio-Signature": self.validator().compute_signature(url, fields),
                "Content-Type": "application/x-www-form-urlencoded"}

    # --- the wire ---------------------------------------------------------------------------------

    @web.middleware
    async def check_auth(self, request: web.Request, handler):
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response(error_body(401, 20003, "Authenticate"), status=401)
        return await handler(request)

    def failure(self, operation: str) -> web.Response | None:
        queued = self.failures.get(operation)
        if not queued:
            return None
        status, code, message = queued.pop(0)
        return web.json_response(error_body(status, code, message), status=status)

    async def search(self, request: web.Request) -> web.Response:
        country = request.match_info["country"]
        self.searches.append({"country": country, **request.query})
        if (failed := self.failure("search")) is not None:
            return failed
        if country not in self.inventory:
            message = f"The requested resource {request.path} was not found"
            return web.json_response(error_body(404, 20404, message), status=404)
        area = request.query.get("AreaCode")
        found = [self.available(item, country) for item in self.inventory[country]
                 if not area or item["phone_number"].startswith("+1" + area)]
        size = int(request.query.get("PageSize", "50"))
        return web.json_response(list_page("available_phone_numbers", found[:size], request.path_qs, size))

    @staticmethod
    def available(item: dict, country: str) -> dict:
        return {**item, "lata": "722", "rate_center": "SNFC", "latitude": "37.77", "longitude": "-122.41",
                "postal_code": "94103", "iso_country": country, "address_requirements": "none", "beta": False}

    async def buy(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (failed := self.failure("buy")) is not None:
            return failed
        number = form.get("PhoneNumber")
        for_sale = [item for items in self.inventory.values() for item in items if item["phone_number"] == number]
        if not for_sale:
            return web.json_response(error_body(400, 21422, "PhoneNumber requested is not available"), status=400)
        for items in self.inventory.values():
            items[:] = [item for item in items if item["phone_number"] != number]
        sid = self.new_sid("PN")
        self.owned[sid] = {
            "sid": sid, "account_sid": self.account_sid, "phone_number": number,
            "friendly_name": for_sale[0]["friendly_name"], "voice_url": form.get("VoiceUrl"),
            "voice_method": form.get("VoiceMethod"), "status_callback": form.get("StatusCallback"),
            "status_callback_method": form.get("StatusCallbackMethod"),
            "capabilities": {"voice": True, "sms": False, "mms": False, "fax": False},
            "date_created": CREATED, "date_updated": CREATED, "status": "in-use",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
        }
        return web.json_response(self.owned[sid], status=201)

    async def list_owned(self, request: web.Request) -> web.Response:
        if (failed := self.failure("list")) is not None:
            return failed
        wanted = request.query.get("PhoneNumber")
        found = [item for item in self.owned.values() if not wanted or item["phone_number"] == wanted]
        size = int(request.query.get("PageSize", "50"))
        return web.json_response(list_page("incoming_phone_numbers", found[:size], request.path_qs, size))

    async def release(self, request: web.Request) -> web.Response:
        if (failed := self.failure("release")) is not None:
            return failed
        sid = request.match_info["sid"]
        if self.owned.pop(sid, None) is None:
            message = f"The requested resource {request.path} was not found"
            return web.json_response(error_body(404, 20404, message), status=404)
        self.released.append(sid)
        return web.Response(status=204)

    async def create_call(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields = {key: (values if len(values := form.getall(key)) > 1 else values[0]) for key in form.keys()}
        if (failed := self.failure("call")) is not None:
            return failed
        to, from_ = fields.get("To", ""), fields.get("From", "")
        if not to.startswith("+") or not to[1:].isdigit():
            return web.json_response(error_body(400, 21211, f"Invalid 'To' Phone Number: {to}"), status=400)
        if from_ not in {item["phone_number"] for item in self.owned.values()}:
            message = f"The source phone number provided, {from_}, is not yet verified for your account."
            return web.json_response(error_body(400, 21210, message), status=400)
        sid = self.new_sid("CA")
        call = {"sid": sid, "account_sid": self.account_sid, "to": to, "from": from_, "status": "queued",
                "direction": "outbound-api", "date_created": CREATED, "date_updated": CREATED,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json"}
        self.calls.append({"sid": sid, "form": fields})
        await self.placed.put({"sid": sid, "form": fields})
        return web.json_response(call, status=201)


async def post_status(http, fake: FakeTwilio, callback_url: str, fields: dict, *, signature: str | None = "good"):
    """Post a status callback to the app as Twilio would: to the path of `callback_url` (our public URL),
    signed over that full URL. signature: "good", "bad", or None (no header)."""
    path = callback_url.split("://", 1)[1]
    path = path[path.index("/"):]
    headers = fake.signed(callback_url, fields)
    if signature is None:
        del headers["X-Twilio-Signature"]
    elif signature == "bad":
        headers["X-Twilio-Signature"] = fake.validator().compute_signature(callback_url + "x", fields)
    async with http.post(path, data=fields, headers=headers) as response:
        return response.status, await response.text()


def call_fields(sid: str, status: str, **extra) -> dict:
    """The form of a status callback (the fields our webhook reads, and some it does not)."""
    return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "CallStatus": status, "ApiVersion": "2010-04-01",
            "Direction": "outbound-api", **extra}


def twilio_port(fake: FakeTwilio) -> Twilio:
    """The real provider, pointed at the fake."""
    return Twilio(fake.account_sid, fake.auth_token, fake.url())
