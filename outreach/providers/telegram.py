"""Telegram user accounts through Telethon: the TelegramSender port, and the interactive login.

One TelethonSender wraps one account's client. Its owner (the account's actor) is the only user of
the session: Telegram revokes a session used by two processes at once (AuthKeyDuplicated). The
client never sleeps through a flood wait (`flood_sleep_threshold=0`): FloodWait comes back as an
outcome with `retry_after`, and the actor pauses the account in PostgreSQL. Usernames are resolved
with ResolveUsernameRequest (Telethon's send_message("name") turns a missing username into a bare
ValueError) and the peer is cached per sender, so per account: an access hash only works for the
account that resolved it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable

from telethon import TelegramClient, errors as tl_errors, events, utils
from telethon.sessions import StringSession
from telethon.tl import functions, types

from outreach.runtime import errors
from outreach.runtime.ports import SendResult

SEND_TIMEOUT = 60.0
DIALOG_PAGE = 100  # dialogs read when catching up on replies that arrived while nobody listened
HISTORY_PAGE = 100  # unread messages read per dialog
OFFLINE_PAUSE = 60  # seconds an account rests when Telegram cannot be reached

# Telethon errors that are about our account: the account actor pauses, cools down or bans it.
ACCOUNT_ERRORS = (
    (tl_errors.PeerFloodError, "peer_flood", "Telegram limits this account's messages to strangers (PeerFlood)"),
    (tl_errors.UserDeactivatedBanError, "banned", "Telegram banned this account"),
    (tl_errors.UserDeactivatedError, "deactivated", "This Telegram account was deleted"),
    (tl_errors.AuthKeyDuplicatedError, "session_revoked",
     "Telegram revoked the session: it was used by two processes at once (AuthKeyDuplicated); log in again"),
    ((tl_errors.AuthKeyUnregisteredError, tl_errors.SessionRevokedError, tl_errors.SessionExpiredError),
     "session_revoked", "The session was logged out; log in again"),
    ((tl_errors.UnauthorizedError, tl_errors.AuthKeyError), "session_revoked", "Telegram no longer accepts the session"),
)
# Telethon errors that are about the lead: the campaign tries the lead's next channel.
LEAD_ERRORS = (
    (tl_errors.UserPrivacyRestrictedError, "privacy_restricted", "The user's privacy settings forbid messages"),
    ((tl_errors.UsernameNotOccupiedError, tl_errors.UsernameInvalidError), "username_not_found",
     "Telegram username not found"),
    ((tl_errors.UserIsBlockedError, tl_errors.YouBlockedUserError), "user_blocked",
     "The user and this account have blocked each other"),
    (tl_errors.InputUserDeactivatedError, "invalid_recipient", "The user's Telegram account was deleted"),
)


def build_client(session: str | None, api_id: int, api_hash: str, receive_updates: bool = False) -> TelegramClient:
    """A client for one account's StringSession (None: a new login), not yet connected. `receive_updates`: the
    account's actor listens for replies; a login or a one-off send asks Telegram for no updates."""
    return TelegramClient(StringSession(session), api_id, api_hash, flood_sleep_threshold=0,
                          receive_updates=receive_updates, raise_last_call_error=True)


@dataclasses.dataclass(frozen=True)
class Incoming:
    """A private message someone sent to the account."""

    peer_id: int  # the sender's Telegram user id
    message_id: int
    text: str


class MemoryPeers:
    """Resolved usernames kept for the life of the sender (storage.telegram_accounts.PgPeers keeps them longer)."""

    def __init__(self):
        self.known: dict[str, tuple[int, int]] = {}

    async def get(self, username: str) -> tuple[int, int] | None:
        return self.known.get(username)

    async def put(self, username: str, user_id: int, access_hash: int) -> None:
        self.known[username] = (user_id, access_hash)


class TelethonSender:
    """The TelegramSender port over one account's client; connects on first use, `close()` disconnects."""

    def __init__(self, client: TelegramClient, timeout: float = SEND_TIMEOUT, peers=None):
        """`peers`: where this account's resolved usernames are kept (`get`/`put`), so a username is
        resolved once per account, not once per actor process."""
        self.client = client
        self.timeout = timeout
        self.peers = peers or MemoryPeers()
        self._connecting = asyncio.Lock()

    async def send_message(self, username: str, text: str) -> SendResult:
        name, is_invite = utils.parse_username(username or "")
        if name is None or is_invite:
            return SendResult("username_not_found", error=f"{username!r} is not a Telegram username")
        try:
            await self._connect()
            peer = await self._known(name) or await self._resolve(name)
        except tl_errors.RPCError as exc:
            return outcome_for(exc)
        except (OSError, asyncio.TimeoutError) as exc:  # nothing was sent
            return offline(exc)
        if peer is None:
            return SendResult("invalid_recipient", error=f"@{name} is a channel or group, not a person")
        return await self._send(peer, text)

    async def listen(self, on_incoming: Callable[[Incoming], Awaitable[None]]) -> None:
        """Connect, and from now on hand each incoming private message to `on_incoming` (Telethon's
        NewMessage(incoming=True) while the client is connected; it reconnects by itself)."""

        async def handle(event: events.NewMessage.Event) -> None:
            if isinstance(event.message.peer_id, types.PeerUser):  # a person, not a group or a channel
                await on_incoming(incoming_of(event.message))

        self.client.add_event_handler(handle, events.NewMessage(incoming=True))
        await self._connect()

    async def unread_since(self, last_seen: int) -> list[Incoming]:
        """Incoming private messages newer than `last_seen` in the dialogs that have unread messages: what
        arrived while nobody listened. Oldest first."""
        await self._connect()
        dialogs = await asyncio.wait_for(self.client(functions.messages.GetDialogsRequest(
            offset_date=None, offset_id=0, offset_peer=types.InputPeerEmpty(), limit=DIALOG_PAGE, hash=0)),
            self.timeout)
        users = {user.id: user for user in dialogs.users}
        found: list[Incoming] = []
        for dialog in dialogs.dialogs:
            user = users.get(getattr(dialog.peer, "user_id", None))
            if user is None or dialog.unread_count == 0 or dialog.top_message <= last_seen:
                continue
            history = await asyncio.wait_for(self.client(functions.messages.GetHistoryRequest(
                peer=types.InputPeerUser(user.id, user.access_hash or 0), offset_id=0, offset_date=None,
                add_offset=0, limit=HISTORY_PAGE, max_id=0, min_id=last_seen, hash=0)), self.timeout)
            found += [incoming_of(message) for message in history.messages
                      if isinstance(message, types.Message) and not message.out and message.id > last_seen]
        return sorted(found, key=lambda message: message.message_id)

    async def close(self) -> None:
        async with self._connecting:
            if self.client.is_connected():
                await self.client.disconnect()

    async def _connect(self) -> None:
        # After close() or a connection Telethon gave up on, the next send connects again.
        async with self._connecting:
            if self.client.is_connected():
                return
            try:
                await asyncio.wait_for(self.client.connect(), self.timeout)
            except BaseException:
                await self.client.disconnect()  # drop a half-made connection: the next send starts clean
                raise

    async def _known(self, name: str) -> types.InputPeerUser | None:
        known = await self.peers.get(name.lower())
        return types.InputPeerUser(*known) if known else None

    async def _resolve(self, name: str) -> types.InputPeerUser | None:
        resolved = await asyncio.wait_for(self.client(functions.contacts.ResolveUsernameRequest(name)), self.timeout)
        peer = input_user(resolved)
        if peer is not None:
            await self.peers.put(name.lower(), peer.user_id, peer.access_hash)
        return peer

    async def _send(self, peer: types.InputPeerUser, text: str) -> SendResult:
        request = functions.messages.SendMessageRequest(peer, text)
        try:
            result = await asyncio.wait_for(self.client(request), self.timeout)
        except tl_errors.RPCError as exc:
            return outcome_for(exc)
        except (OSError, asyncio.TimeoutError) as exc:
            # The request may have reached Telegram: never resend it, record the outcome as unknown.
            return SendResult("unknown", error=f"Telegram did not confirm the message: {exc!r}")
        sent_id = message_id(result)
        return SendResult("sent", provider_id=f"{peer.user_id}:{sent_id}" if sent_id is not None else None)


def incoming_of(message: types.Message) -> Incoming:
    return Incoming(peer_id=message.peer_id.user_id, message_id=message.id, text=message.message or "")


def input_user(resolved: types.contacts.ResolvedPeer) -> types.InputPeerUser | None:
    """The resolved person as (user_id, access_hash); None for a channel or a group."""
    if not isinstance(resolved.peer, types.PeerUser):
        return None
    user = next((user for user in resolved.users if user.id == resolved.peer.user_id), None)
    return types.InputPeerUser(user.id, user.access_hash or 0) if user is not None else None


def message_id(result) -> int | None:
    """The id of the sent message: an UpdateShortSentMessage without updates, else inside Updates."""
    if isinstance(result, types.UpdateShortSentMessage):
        return result.id
    for update in getattr(result, "updates", ()):
        if isinstance(update, types.UpdateMessageID):
            return update.id
        if isinstance(update, types.UpdateNewMessage):
            return update.message.id
    return None


def outcome_for(exc: tl_errors.RPCError) -> SendResult:
    """A Telethon error as the runtime's outcome; account-level ones block the channel for this account."""
    if isinstance(exc, tl_errors.FloodWaitError):
        return SendResult("flood_wait", error=f"Telegram asks this account to wait {exc.seconds} s (FloodWait)",
                          channel_blocked=True, retry_after=exc.seconds)
    for classes, outcome, reason in ACCOUNT_ERRORS:
        if isinstance(exc, classes):
            return SendResult(outcome, error=f"{reason} [{exc.message}]", channel_blocked=True)
    for classes, outcome, reason in LEAD_ERRORS:
        if isinstance(exc, classes):
            return SendResult(outcome, error=reason)
    return SendResult("failed", error=f"Telegram refused the message: {exc.message}")


def offline(exc: BaseException) -> SendResult:
    """Telegram could not be reached before anything was sent: the account rests briefly, like a short
    flood wait (the send is not counted and another account is tried)."""
    return SendResult("flood_wait", error=f"Cannot reach Telegram ({exc!r}); account paused for {OFFLINE_PAUSE} s",
                      channel_blocked=True, retry_after=OFFLINE_PAUSE)


# --- interactive login ---------------------------------------------------------------------------

Prompt = Callable[[str], str | Awaitable[str]]
LOGIN_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class Login:
    session: str  # the plain StringSession: encrypt it before it is stored
    username: str | None
    display_name: str


async def log_in(client: TelegramClient, phone: str, ask_code: Prompt, ask_password: Prompt) -> Login:
    """Log a new session in: the code Telegram sends to the account, then its 2FA password if it has one.

    The prompts are called with the text to show and return (or resolve to) the answer.
    """
    try:
        await client.connect()
        await client.send_code_request(phone)
        await enter_code(client, phone, ask_code, ask_password)
        me = await client.get_me()
        return Login(client.session.save(), me.username, display_name(me))
    except tl_errors.RPCError as exc:
        raise login_error(exc) from exc
    except OSError as exc:
        raise errors.ProviderError(f"Cannot reach Telegram: {exc}") from exc
    finally:
        await client.disconnect()


async def enter_code(client: TelegramClient, phone: str, ask_code: Prompt, ask_password: Prompt) -> None:
    prompt = "Login code Telegram sent to the account: "
    for _ in range(LOGIN_ATTEMPTS):
        try:
            await client.sign_in(phone, code=(await answer(ask_code, prompt)).strip())
            return
        except tl_errors.PhoneCodeInvalidError:
            prompt = "That code is wrong; the login code again: "
        except tl_errors.SessionPasswordNeededError:
            return await enter_password(client, ask_password)
    raise errors.Invalid(f"The login code was wrong {LOGIN_ATTEMPTS} times")


async def enter_password(client: TelegramClient, ask_password: Prompt) -> None:
    prompt = "Two-step verification password: "
    for _ in range(LOGIN_ATTEMPTS):
        try:
            await client.sign_in(password=await answer(ask_password, prompt))
            return
        except tl_errors.PasswordHashInvalidError:
            prompt = "That password is wrong; the password again: "
    raise errors.Invalid(f"The two-step verification password was wrong {LOGIN_ATTEMPTS} times")


async def answer(prompt: Prompt, text: str) -> str:
    reply = prompt(text)
    return await reply if inspect.isawaitable(reply) else reply


def display_name(user: types.User) -> str:
    return " ".join(part for part in (user.first_name, user.last_name) if part)


def login_error(exc: tl_errors.RPCError) -> Exception:
    if isinstance(exc, tl_errors.ApiIdInvalidError):
        return errors.ConfigError("Telegram refused TELEGRAM_API_ID / TELEGRAM_API_HASH")
    if isinstance(exc, tl_errors.FloodWaitError):
        return errors.RateLimited(f"Telegram asks to wait {exc.seconds} s before logging in again",
                                  retry_after=exc.seconds)
    messages = {
        tl_errors.PhoneNumberInvalidError: "Telegram says this phone number is invalid",
        tl_errors.PhoneNumberBannedError: "Telegram banned this phone number",
        tl_errors.PhoneNumberUnoccupiedError: "No Telegram account uses this phone number",
        tl_errors.PhoneCodeExpiredError: "The login code expired; run the command again",
    }
    for cls, message in messages.items():
        if isinstance(exc, cls):
            return errors.Invalid(message)
    return errors.ProviderError(f"Telegram refused the login: {exc.message}")
