"""A scripted stand-in for Telethon's MTProtoSender, so the real TelegramClient runs without a network.

No MTProto server can be installed here, so a test builds the client as production does and puts a
FakeTelegram where the client keeps its sender (`client._sender`) before connecting. Everything
above the sender is Telethon's own code: connect() (InvokeWithLayer(InitConnection(GetConfig)),
get_me(), GetState/GetDifference after a login), request wrapping (InvokeWithoutUpdates when
`receive_updates=False`), entity processing, sign-in with the SRP password check, and the RPC error
classes, built by `rpc_message_to_error` and raised from the request's future as MTProtoSender does.

Requests a client makes on its own (config, the self user, update state) are answered from the
account's state; every other request must match the next entry of the script, in order, or the
test fails with the unexpected request named.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import os
import random
from collections.abc import Callable

from telethon import errors as tl_errors, password as tl_password, utils
from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import TLObject, functions, types

# Telegram's 2048-bit safe prime for two-step verification; Telethon accepts it with g = 3 without
# a slow primality check (telethon/password.py).
GOOD_PRIME = bytes.fromhex(
    "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"
    "48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"
    "20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"
    "2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"
    "A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"
    "FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"
    "E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
    "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B"
)
WRAPPERS = (functions.InvokeWithLayerRequest, functions.InitConnectionRequest, functions.InvokeWithoutUpdatesRequest)
NOW = datetime.datetime(2026, 3, 24, 10, 0, tzinfo=datetime.timezone.utc)


@dataclasses.dataclass
class Reply:
    """The answer to the next request, which must be a `request_type`: a TL object, a types.RpcError
    (raised as Telethon's error class), an exception (a network failure), or a callable of the request
    returning one of those."""

    request_type: type
    answer: object


def rpc_error(code: int, message: str) -> types.RpcError:
    return types.RpcError(code, message)


def user(user_id: int = 5001, username: str | None = "lead_one", access_hash: int | None = None,
         first_name: str = "Lead", last_name: str | None = None, is_self: bool = False) -> types.User:
    return types.User(id=user_id, is_self=is_self, access_hash=access_hash if access_hash is not None else user_id * 7,
                      first_name=first_name, last_name=last_name, username=username)


ME = user(777, "outreach_agent", first_name="Olena", last_name="Sales", is_self=True)


def resolved(target: types.User) -> types.contacts.ResolvedPeer:
    return types.contacts.ResolvedPeer(types.PeerUser(target.id), chats=[], users=[target])


def resolved_channel(channel_id: int = 9001, username: str = "news") -> types.contacts.ResolvedPeer:
    channel = types.Channel(id=channel_id, title="News", photo=types.ChatPhotoEmpty(), date=NOW,
                            access_hash=channel_id * 3, username=username, broadcast=True)
    return types.contacts.ResolvedPeer(types.PeerChannel(channel_id), chats=[channel], users=[])


def sent_message(message_id: int) -> types.UpdateShortSentMessage:
    return types.UpdateShortSentMessage(id=message_id, pts=100 + message_id, pts_count=1, date=NOW, out=True)


def resolve(target: types.User) -> Reply:
    return Reply(functions.contacts.ResolveUsernameRequest, resolved(target))


def send(message_id: int) -> Reply:
    return Reply(functions.messages.SendMessageRequest, sent_message(message_id))


def fail(request_type: type, code: int, message: str) -> Reply:
    return Reply(request_type, rpc_error(code, message))


def session_string(dc_id: int = 2, address: str = "149.154.167.51", port: int = 443) -> str:
    """A logged-in account's StringSession, as `outreach telegram add` stores it (before encryption)."""
    session = StringSession()
    session.set_dc(dc_id, address, port)
    session.auth_key = AuthKey(os.urandom(256))
    return session.save()


def attach(client, fake: "FakeTelegram") -> "FakeTelegram":
    """Put `fake` where the client's MTProtoSender was, with the session's auth key as that sender had."""
    if client.session.auth_key:
        fake.auth_key = client.session.auth_key
    client._sender = fake
    fake.client = client  # where incoming updates go (deliver)
    return fake


# --- incoming messages ---------------------------------------------------------------------------


def dialog(peer_user: types.User, top_message: int, unread_count: int) -> types.Dialog:
    return types.Dialog(peer=types.PeerUser(peer_user.id), top_message=top_message, read_inbox_max_id=0,
                        read_outbox_max_id=0, unread_count=unread_count, unread_mentions_count=0,
                        unread_reactions_count=0, unread_poll_votes_count=0, notify_settings=types.PeerNotifySettings())


def incoming(message_id: int, sender: types.User, text: str, out: bool = False) -> types.Message:
    return types.Message(id=message_id, peer_id=types.PeerUser(sender.id), date=NOW, message=text, out=out,
                         from_id=None if out else types.PeerUser(sender.id))


def dialogs(*entries: tuple[types.User, int, int]) -> Reply:
    """messages.getDialogs: (user, top message id, unread count) per private dialog."""
    return Reply(functions.messages.GetDialogsRequest, types.messages.Dialogs(
        dialogs=[dialog(*entry) for entry in entries], messages=[], chats=[],
        users=list({entry[0].id: entry[0] for entry in entries}.values())))


def history(*messages: types.Message) -> Reply:
    """messages.getHistory of one dialog: the messages above the request's min_id, newest first as Telegram
    answers."""

    def answer(request: functions.messages.GetHistoryRequest):
        newer = [message for message in messages if message.id > request.min_id]
        return types.messages.Messages(messages=sorted(newer, key=lambda message: -message.id), topics=[], chats=[],
                                       users=[])

    return Reply(functions.messages.GetHistoryRequest, answer)


class FakeTelegram:
    """Speaks the MTProtoSender interface TelegramClient uses: connect, send, disconnect, is_connected."""

    def __init__(self, script: list[Reply] | tuple = (), me: types.User | None = ME,
                 connect_error: types.RpcError | None = None):
        self.script = list(script)
        self.me = me  # None: the session is not (or no longer) logged in
        self.connect_error = connect_error  # what Telegram answers the first request of a connection
        self.auth_key = AuthKey(None)
        self.requests: list[TLObject] = []  # scripted requests received, unwrapped
        self.envelopes: list[type] = []  # their outermost request type, as the client sent them
        self.chores: list[TLObject] = []  # requests the client made on its own
        self.connections = 0
        self.connection = None
        self.client = None  # set by attach()
        self.pts = 1  # the update state answered to updates.getState; each delivered update moves it on
        self._user_connected = False
        self._disconnected_future: asyncio.Future | None = None

    # --- what TelegramClient calls -------------------------------------------------------------

    async def connect(self, connection) -> bool:
        if self._user_connected:
            return False
        if self.auth_key.key is None:  # a new session: the real sender would run the key exchange here
            self.auth_key = AuthKey(os.urandom(256))
        self.connection = connection
        self.connections += 1
        self._user_connected = True
        self._disconnected_future = asyncio.get_running_loop().create_future()
        return True

    def is_connected(self) -> bool:
        return self._user_connected

    def _transport_connected(self) -> bool:
        return self._user_connected

    def _keepalive_ping(self, rnd_id: int) -> None:
        """Pings need no answer."""

    async def disconnect(self) -> None:
        self._user_connected = False
        if self._disconnected_future is not None and not self._disconnected_future.done():
            self._disconnected_future.set_result(None)

    @property
    def disconnected(self) -> asyncio.Future:
        if self._disconnected_future is None:
            self._disconnected_future = asyncio.get_running_loop().create_future()
            self._disconnected_future.set_result(None)
        return asyncio.shield(self._disconnected_future)

    def send(self, request, ordered: bool = False):
        if not self._user_connected:
            raise ConnectionError("Cannot send requests while disconnected")
        if utils.is_list_like(request):
            return [self.send(item) for item in request]
        future = asyncio.get_running_loop().create_future()
        try:
            answer = self._answer(request)
        except AssertionError as exc:
            future.set_exception(exc)
            return future
        settle(future, answer, request)
        if isinstance(answer, types.auth.Authorization):
            self.me = answer.user  # logged in: from now on the client is this user
        return future

    def deliver(self, sender: types.User, message_id: int, text: str) -> None:
        """A private message from `sender` arrives, as Telegram pushes it to a client that receives updates
        (updateShortMessage, in pts order), through Telethon's own update loop and event handlers."""
        self.pts += 1
        update = types.UpdateShortMessage(id=message_id, user_id=sender.id, message=text, pts=self.pts, pts_count=1,
                                          date=NOW, out=False)
        self.client._updates_queue.put_nowait(update)

    # --- answers -------------------------------------------------------------------------------

    def _answer(self, envelope):
        request = unwrap(envelope)
        chore = self._chore(request)
        if chore is not None:
            self.chores.append(request)
            return chore
        self.requests.append(request)
        self.envelopes.append(type(envelope))
        if not self.script:
            raise AssertionError(f"unexpected {type(request).__name__}: the script is empty")
        reply = self.script.pop(0)
        if not isinstance(request, reply.request_type):
            raise AssertionError(f"expected {reply.request_type.__name__}, got {type(request).__name__}")
        return reply.answer(request) if callable(reply.answer) else reply.answer

    def _chore(self, request):
        if isinstance(request, functions.help.GetConfigRequest):
            return self.connect_error or config()
        unauthorized = rpc_error(401, "AUTH_KEY_UNREGISTERED")
        if isinstance(request, functions.users.GetUsersRequest) and request.id == [types.InputUserSelf()]:
            return [self.me] if self.me else unauthorized
        if isinstance(request, functions.updates.GetStateRequest):
            return types.updates.State(pts=self.pts, qts=0, date=NOW, seq=1, unread_count=0) if self.me else unauthorized
        if isinstance(request, functions.updates.GetDifferenceRequest):
            return types.updates.DifferenceEmpty(date=NOW, seq=1) if self.me else unauthorized
        return None


def unwrap(request):
    while isinstance(request, WRAPPERS):
        request = request.query
    return request


def settle(future: asyncio.Future, answer, request) -> None:
    if isinstance(answer, types.RpcError):
        future.set_exception(tl_errors.rpc_message_to_error(answer, request))
    elif isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)


def config() -> types.Config:
    """What help.getConfig answers (the client discards it on connect, but it is a real Config)."""
    return types.Config(
        date=NOW, expires=NOW + datetime.timedelta(hours=1), test_mode=False, this_dc=2,
        dc_options=[types.DcOption(id=2, ip_address="149.154.167.51", port=443)], dc_txt_domain_name="apv3.stel.com",
        chat_size_max=200, megagroup_size_max=200000, forwarded_count_max=100, online_update_period_ms=210000,
        offline_blur_timeout_ms=5000, offline_idle_timeout_ms=30000, online_cloud_timeout_ms=300000,
        notify_cloud_delay_ms=30000, notify_default_delay_ms=1500, push_chat_period_ms=60000, push_chat_limit=2,
        edit_time_limit=172800, revoke_time_limit=2147483647, revoke_pm_time_limit=2147483647, rating_e_decay=2419200,
        stickers_recent_limit=200, channels_read_media_period=604800, call_receive_timeout_ms=20000,
        call_ring_timeout_ms=90000, call_connect_timeout_ms=30000, call_packet_timeout_ms=10000,
        me_url_prefix="https://t.me/", caption_length_max=1024, message_length_max=4096, webfile_dc_id=4,
    )


# --- login ---------------------------------------------------------------------------------------


def code_sent() -> Reply:
    return Reply(functions.auth.SendCodeRequest,
                 types.auth.SentCode(type=types.auth.SentCodeTypeApp(length=5), phone_code_hash="c0ffee"))


def code_sign_in(code: str, account: types.User = ME, needs_password: bool = False) -> Reply:
    """auth.signIn: a wrong code is PHONE_CODE_INVALID; with two-step verification the right code asks for it."""

    def answer(request: functions.auth.SignInRequest):
        if request.phone_code != code or request.phone_code_hash != "c0ffee":
            return rpc_error(400, "PHONE_CODE_INVALID")
        return rpc_error(401, "SESSION_PASSWORD_NEEDED") if needs_password else types.auth.Authorization(account)

    return Reply(functions.auth.SignInRequest, answer)


class TwoFactor:
    """The server side of Telegram's SRP password check: it knows only the verifier, never the password."""

    def __init__(self, password: str):
        self.algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=os.urandom(32), salt2=os.urandom(16), g=3, p=GOOD_PRIME)
        self.p = int.from_bytes(GOOD_PRIME, "big")
        self.verifier = pow(3, int.from_bytes(tl_password.compute_hash(self.algo, password), "big"), self.p)
        self.b = self.srp_b = 0

    def attempt(self, account: types.User = ME) -> list[Reply]:
        """One password try: account.getPassword, then auth.checkPassword."""
        return [Reply(functions.account.GetPasswordRequest, lambda request: self.password_info()),
                Reply(functions.auth.CheckPasswordRequest, lambda request: self.check(request, account))]

    def password_info(self) -> types.account.Password:
        self.b = random.getrandbits(2048) % self.p
        k = int.from_bytes(sha256(pad(GOOD_PRIME), pad(bytes([3]))), "big")
        self.srp_b = (k * self.verifier + pow(3, self.b, self.p)) % self.p
        return types.account.Password(
            new_algo=types.PasswordKdfAlgoUnknown(), new_secure_algo=types.SecurePasswordKdfAlgoUnknown(),
            secure_random=os.urandom(32), has_password=True, current_algo=self.algo,
            srp_B=self.srp_b.to_bytes(256, "big"), srp_id=42)

    def check(self, request: functions.auth.CheckPasswordRequest, account: types.User):
        srp = request.password
        a_big = int.from_bytes(srp.A, "big")
        b_bytes = self.srp_b.to_bytes(256, "big")
        u = int.from_bytes(sha256(pad(srp.A), b_bytes), "big")
        shared = pow(a_big * pow(self.verifier, u, self.p) % self.p, self.b, self.p)
        expected = sha256(xor(sha256(pad(GOOD_PRIME)), sha256(pad(bytes([3])))), sha256(self.algo.salt1),
                          sha256(self.algo.salt2), pad(srp.A), b_bytes, sha256(shared.to_bytes(256, "big")))
        if srp.srp_id != 42 or srp.M1 != expected:
            return rpc_error(400, "PASSWORD_HASH_INVALID")
        return types.auth.Authorization(account)


def sha256(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def pad(value: bytes) -> bytes:
    return bytes(256 - len(value)) + value


def xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right))


def answering(prompts: list[str]) -> tuple[Callable[[str], str], list[str]]:
    """A prompt callable that gives `prompts` in order, and the list of texts it was shown."""
    shown: list[str] = []

    def ask(text: str) -> str:
        shown.append(text)
        return prompts.pop(0)

    return ask, shown
