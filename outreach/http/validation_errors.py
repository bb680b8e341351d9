"""The one place where pydantic's refusals become the contract's error texts.

A refusal has a reason (`missing`, `type`, `enum`, `length`, `pattern`, `range`, `item`, `unknown`), read from
pydantic's error type (REASONS). MESSAGES gives, by model and wire field, one text for every reason or a text
per reason; a reason it leaves out gets the default text of the field's kind (DEFAULTS). Texts are templates:
`{name}` (the wire field), `{allowed}`, `{min_length}`, `{max_length}`, `{minimum}`, `{maximum}`, `{min_items}`
(the field's own rules, so a text cannot drift from them), `{value!r}` (the refused value), `{keys}` and
`{fields}` (unknown keys, the model's fields). A model's table is also its subclasses'.

The first refusal wins, in this order: unknown keys, then the first missing field, then the first field (in
the model's order) that fails its rule. Everything is a 400, except the fields in NOT_FOUND, whose bad value
names nothing (a 404, like another organization's id); a missing field is always a 400.
"""
from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping

from outreach.runtime import errors, optout, policy, sender_proof

MODEL = "*"  # the key of a model's own refusals (unknown keys)
REASONS = {
    "missing": "missing", "extra_forbidden": "unknown",
    "literal_error": "enum",  # "type" when the value is not a string at all
    "string_too_short": "length", "string_too_long": "length", "too_short": "length", "too_long": "length",
    "string_pattern_mismatch": "pattern",
    "greater_than_equal": "range", "less_than_equal": "range", "greater_than": "range", "less_than": "range",
}  # anything else (string_type, int_parsing, uuid_parsing, finite_number, list_type, ...) is "type"

SEND_FIELDS = "Missing required fields: leadId, subject, body, toEmail"
STRINGS = "leadId, subject, body and toEmail must be strings"
LEAD_IDS = "leadIds must be a non-empty array"
CONTENT = "content must be a string"
HANDLERS = "objectionHandlers must be an array of strings"
CHANNEL_MISSING = "Missing required fields: channel, config"
CHANNEL = "Invalid channel. Must be one of: {allowed}"
ADDRESS = "config.{name} must be a valid email address"
E164 = "phoneNumber must be in E.164 format, like +14155551234"
STATUS_FILTER = "Invalid status filter. Use one of: {allowed}"
OPTION = "Invalid {name}. Must be one of: {allowed}"
VOICES = "selectedVoices must be an array of voice names"
LIQPAY_MISSING = "Missing data or signature"
STRIPE_PAYLOAD = "Invalid payload"
TWILIO_MISSING = "Missing {name}"
UUID = "{name} must be a UUID"
SUPPRESSION_TYPE = f"type must be one of: {', '.join(optout.SUPPRESSION_TYPES)}"
SUPPRESSION_VALUE = "value must be a non-empty string of at most {max_length} characters"
SENDER_ADDRESS = "address must be a valid email address"


def lead_id_refused(value) -> str:
    return STRINGS if not isinstance(value, str) else "leadId must be a UUID"


MESSAGES: dict[str, dict[str, str | Mapping[str, str | Callable]]] = {
    "CampaignCreate": {
        "name": "Name is required",
        "channels": {"type": "Channels must be an array", "item": "Invalid channel type"},
        "channelPriority": "Invalid channelPriority",
    },
    "CampaignUpdate": {
        "name": "Name cannot be empty", "channels": "Invalid channels", "channelPriority": "Invalid channelPriority",
        "status": "Invalid status",
    },
    "LeadIds": {"leadIds": {"missing": LEAD_IDS, "type": LEAD_IDS, "length": LEAD_IDS,
                            "item": "Invalid id in list: {value!r}"}},
    "CampaignListQuery": {"status": STATUS_FILTER},
    "LeadListQuery": {"status": STATUS_FILTER},
    "LeadUpdate": {"status": "Invalid status"},
    "LeadImport": {"file": "No file provided"},
    "ScriptCreate": {"name": "Name is required", "content": CONTENT, "objectionHandlers": HANDLERS},
    "ScriptUpdate": {"name": "Name cannot be empty", "content": CONTENT, "objectionHandlers": HANDLERS},
    "NumberPurchase": {"phoneNumber": {"missing": "Missing required field: phoneNumber", "type": E164,
                                       "pattern": E164}},
    "NumberUpdate": {"campaignId": "Campaign not found"},
    "NumberSearchQuery": {"country": "country must be a two-letter ISO country code, like US",
                          "areaCode": "areaCode must be digits, like 415"},
    "ChannelConfigSave": {
        "channel": {"missing": CHANNEL_MISSING, "type": CHANNEL, "enum": CHANNEL},
        "config": {"missing": CHANNEL_MISSING},
        "status": "Invalid status. Must be one of: {allowed}",
    },
    "EmailSenderConfig": {
        MODEL: {"unknown": "Unknown email config field: {keys}. Allowed: {fields}"},
        "fromEmail": {"missing": "config.fromEmail is required", "type": ADDRESS, "length": ADDRESS,
                      "pattern": ADDRESS},
        "fromName": {"type": "config.fromName must be a string",
                     "pattern": "config.fromName must not contain line breaks or control characters",
                     "length": "config.fromName must be at most {max_length} characters"},
        "replyTo": ADDRESS,
    },
    "EmailSend": {
        "leadId": {"missing": SEND_FIELDS, "type": lead_id_refused},
        "subject": {"missing": SEND_FIELDS, "type": STRINGS, "length": "subject must be 1 to {max_length} characters"},
        "body": {"missing": SEND_FIELDS, "type": STRINGS, "length": "body must be at most {max_length} characters"},
        "toEmail": {"missing": SEND_FIELDS, "type": STRINGS},
    },
    "EmailGenerate": {"type": "Invalid type. Must be 'initial', 'followup', or 'final'"},
    "VoiceReplace": {"selectedVoices": VOICES, "language": OPTION, "personality": OPTION,
                     "speed": "speed must be a number from {minimum} to {maximum}"},
    "DemoEmail": {"email": "Valid email is required"},
    "DemoTelegram": {"username": "Invalid username"},
    "ApiKeyCreate": {"name": "Name is required"},
    "ApiKeyDeleteQuery": {"id": {"missing": "Key ID is required", "type": "Key not found"}},
    "PlanChoice": {"planId": policy.INVALID_PLAN},
    "ExecuteQuery": {"wait": "wait must be true or false"},
    "ProgressFeedQuery": {"after": "after must be a cursor from this feed"},
    "LiqPayCallback": {"data": LIQPAY_MISSING, "signature": LIQPAY_MISSING},
    "StripeEvent": {"id": STRIPE_PAYLOAD, "type": STRIPE_PAYLOAD, "created": STRIPE_PAYLOAD},
    "StripeSignature": {"Stripe-Signature": "Missing signature"},
    "ResendEvent": {"type": "Event must be a JSON object with a type"},
    "VoiceAgentReport": {
        "callLogId": UUID, "orgId": UUID,
        "transcript": "transcript must be an array of {role: assistant|user, content: string}",
        "recordingUrl": "recordingUrl must be an http(s) URL", "doNotCall": "doNotCall must be a boolean",
    },
    "TwilioStatusQuery": {"orgId": UUID, "callLogId": UUID},
    "TwilioVoiceQuery": {"orgId": UUID},
    "TwilioCallStatus": {"CallSid": TWILIO_MISSING, "CallStatus": TWILIO_MISSING},
    "TwilioIncomingCall": {"CallSid": TWILIO_MISSING, "To": TWILIO_MISSING},
    "ClerkEvent": {"type": "Event must be a JSON object with a type"},
    "SuppressionEntry": {"type": SUPPRESSION_TYPE, "value": SUPPRESSION_VALUE},
    "SuppressionAdd": {"type": SUPPRESSION_TYPE, "value": SUPPRESSION_VALUE,
                       "entries": {"type": "entries must be an array of {type, value}",
                                   "length": "entries must not be empty"}},
    "SuppressionListQuery": {"type": SUPPRESSION_TYPE},
    "SuppressionImport": {"file": "No file provided"},
    "SenderVerify": {"address": {"missing": "address is required", "type": SENDER_ADDRESS, "length": SENDER_ADDRESS,
                                 "pattern": SENDER_ADDRESS}},
    "SenderConfirmQuery": {"token": {"missing": "token is required", "type": sender_proof.INVALID_LINK,
                                     "length": sender_proof.INVALID_LINK}},
}
NOT_FOUND = {("ApiKeyDeleteQuery", "id")}

TYPE_NOUNS = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
              "array": "an array", "object": "an object"}
FORMAT_NOUNS = {"uuid": "a UUID", "date-time": "an ISO 8601 date and time", "binary": "a file"}


def refusal(model, found: list[dict], data: Mapping, described: dict) -> errors.ServiceError:
    """The contract's error for pydantic's `found` refusals of `data` by `model` (`described`: its JSON Schema)."""
    unknown = sorted(str(error["loc"][0]) for error in found if error["type"] == "extra_forbidden")
    if unknown:
        text = message_for(model, MODEL, "unknown", {"keys": ", ".join(unknown),
                                                     "fields": ", ".join(described["properties"])})
        return errors.Invalid(text)
    error = next((error for error in found if error["type"] == "missing"), found[0])
    name = str(error["loc"][0])
    rules = described["properties"].get(name, {})
    reason = reason_of(error, rules)
    nested = nested_model(model, name) if reason == "item" and len(error["loc"]) > 2 else None
    if nested is not None and not has_own_text(model, name, "item"):  # the item model's own text stands
        item = item_of(data, error["loc"])
        return refusal(nested, [{**error, "loc": error["loc"][2:]}], item if isinstance(item, Mapping) else {},
                       {**described.get("$defs", {}).get(nested.__name__, {}), "$defs": described.get("$defs", {})})
    value = item_of(data, error["loc"]) if reason == "item" else data.get(name) if reason != "missing" else None
    text = message_for(model, name, reason, {**template_values(rules), "name": name, "value": value}, rules)
    refused = errors.NotFound if reason != "missing" and (model_key(model, name), name) in NOT_FOUND else errors.Invalid
    return refused(text)


def reason_of(error: dict, rules: dict) -> str:
    if len(error["loc"]) > 1:
        return "item"
    if error["type"] != "missing" and rules.get("format") in FORMAT_NOUNS:  # a UUID of the wrong length: no UUID
        return "type"
    if error["type"] == "literal_error" and not isinstance(error.get("input"), str):
        return "type"
    return REASONS.get(error["type"], "type")


def nested_model(model, alias: str):
    """The model of the items of the array field `alias`, if they are models."""
    field = next((field for name, field in model.model_fields.items() if (field.alias or name) == alias), None)
    return model_in(field.annotation) if field is not None else None


def model_in(annotation):
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    return next(filter(None, map(model_in, typing.get_args(annotation))), None)


def has_own_text(model, field: str, reason: str) -> bool:
    entry = MESSAGES.get(model_key(model, field), {}).get(field)
    return entry is not None and (not isinstance(entry, Mapping) or reason in entry)


def item_of(data: Mapping, loc: tuple):
    """The refused element of an array (the whole element, even when the refusal is deeper inside it)."""
    try:
        return data[loc[0]][loc[1]]
    except (LookupError, TypeError):
        return None


def model_key(model, field: str) -> str | None:
    """The model of `model`'s ancestry (itself first) whose table has an entry for `field`."""
    return next((cls.__name__ for cls in model.__mro__ if field in MESSAGES.get(cls.__name__, ())), None)


def message_for(model, field: str, reason: str, values: dict, rules: dict | None = None) -> str:
    entry = MESSAGES.get(model_key(model, field), {}).get(field)
    template = entry.get(reason) if isinstance(entry, Mapping) else entry
    if template is None:
        template = default_template(reason, rules or {})
    if callable(template):
        return template(values.get("value"))
    return fill(template, values)


def default_template(reason: str, rules: dict) -> str:
    kind, bounded = rules.get("type"), "minimum" in rules and "maximum" in rules
    if reason == "missing":
        return "{name} is required"
    if reason == "enum":
        return "{name} must be one of: {allowed}"
    if reason == "item":
        return "Invalid item in {name}: {value!r}"
    if reason == "pattern":
        return "{name} is not valid"
    if reason == "length":
        return length_template(rules)
    if kind == "number" and bounded:
        return "{name} must be a number from {minimum} to {maximum}"  # the type and the range at once
    if reason == "range":
        return "{name} must be a whole number from {minimum} to {maximum}"
    noun = FORMAT_NOUNS.get(rules.get("format")) or TYPE_NOUNS.get(kind, "valid")
    return "{name} must be " + noun


def length_template(rules: dict) -> str:
    if rules.get("type") == "array":
        return "{name} must have at least {min_items} items"
    if "maxLength" not in rules:
        return "{name} must not be empty" if rules.get("minLength") == 1 else \
            "{name} must be at least {min_length} characters"
    if rules.get("minLength"):
        return "{name} must be {min_length} to {max_length} characters"
    return "{name} must be at most {max_length} characters"


def template_values(rules: dict) -> dict:
    names = {"minLength": "min_length", "maxLength": "max_length", "minimum": "minimum", "maximum": "maximum",
             "minItems": "min_items"}
    values = {name: rules.get(key) for key, name in names.items()}
    values["allowed"] = ", ".join(rules.get("enum", ()))
    return values


PLACEHOLDER = re.compile(r"{(\w+)(!r)?}")


def fill(template: str, values: dict) -> str:
    """Only known placeholders are filled: a text may hold braces of its own."""
    def replace(match: re.Match) -> str:
        if match.group(1) not in values:
            return match.group(0)
        value = values[match.group(1)]
        return repr(value) if match.group(2) else str(value)

    return PLACEHOLDER.sub(replace, template)
