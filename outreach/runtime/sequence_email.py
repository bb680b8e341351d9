"""The dashboard's three-email sequence (initial, followup, final) written from templates: what `email/generate`
answers when no AI draft can be had (OpenRouter unset, failing or rate limited), and what replaces an AI answer
that cannot be sent. Pure: the lead's name and company, and the organization's language."""
from __future__ import annotations

import re

FIELD_MAX = 80
EMAIL_KINDS = ("initial", "followup", "final")
LANGUAGES = {"en": "English", "uk": "Ukrainian", "ua": "Ukrainian", "ru": "Russian", "pl": "Polish",
             "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese"}


def one_line(value) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def language_name(language: str) -> str:
    code = re.split(r"[-_]", language, maxsplit=1)[0]
    return LANGUAGES.get(code, language)


def is_ukrainian(language: str) -> bool:
    return language_name(language) == "Ukrainian"


def first_name_of(lead: dict) -> str:
    """The first name, else the first word of a full `name`."""
    name = one_line(lead.get("first_name")) or one_line(lead.get("name"))
    return name.split(" ", 1)[0][:FIELD_MAX] if name else ""


def fallback_subject(lead: dict, language: str, kind: str = "initial") -> str:
    """The template subject of each email of the sequence (contract §1.6) when the model gave none."""
    ukrainian = is_ukrainian(language)
    company = one_line(lead.get("company"))[:FIELD_MAX]
    if kind == "followup":
        return "Щодо мого попереднього листа" if ukrainian else "Following up on my previous email"
    if kind == "final":
        title = "Останній лист" if ukrainian else "Final note"
        return f"{title} — {company}" if company else title
    name = company or first_name_of(lead)
    if ukrainian:
        return f"Пропозиція для {name or 'вас'}"
    return f"A quick note for {name or 'you'}"


def fallback_email(kind: str, lead: dict, language: str) -> tuple[str, str]:
    """The template email of the sequence: (subject, body)."""
    name, company = first_name_of(lead), one_line(lead.get("company"))[:FIELD_MAX]
    if is_ukrainian(language):
        greeting = f"Добрий день, {name}!" if name else "Добрий день!"
        lines = {"initial": f"Пишу до {company or 'вашої команди'} з ідеєю, яка може заощадити вам час. "
                            "Чи зручно вам коротко поспілкуватися цього тижня?",
                 "followup": "Хочу нагадати про мій попередній лист. Чи варто нам коротко поговорити? "
                             "Якщо зараз не на часі, просто дайте знати.",
                 "final": "Це мій останній лист на цю тему. Якщо вона стане актуальною, буду радий "
                          "поспілкуватися: просто дайте відповідь на цей лист."}
        sign_off = "З повагою"
    else:
        greeting = f"Hi {name or 'there'},"
        lines = {"initial": f"I am reaching out to {company or 'your team'} with an idea that could save you time. "
                            "Would you be open to a short call this week?",
                 "followup": "I wanted to follow up on my previous email. Is this worth a short conversation? "
                             "If the timing is not right, just let me know.",
                 "final": "This is my last note on this. If it becomes relevant, I would be glad to talk: "
                          "simply reply to this email."}
        sign_off = "Best regards"
    return fallback_subject(lead, language, kind), f"{greeting}\n\n{lines[kind]}\n\n{sign_off}"


def fallback_draft(kind: str, lead: dict, language: str, reason: str) -> dict:
    """The answer of `email/generate` without an AI draft: the template email, flagged, with why."""
    subject, body = fallback_email(kind, lead, language)
    return {"subject": subject, "body": body, "fallback": True, "reason": reason}
