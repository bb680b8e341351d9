"""Request validation cost, per request, before and after the move to pydantic v2.

`python bench/validation.py` validates the 10 most used request bodies (a decoded JSON object in, the
handler's values out, exactly what `params.body` does after reading the JSON) with:

- the house DSL (http/schema.py) as it was at commit BEFORE, exported from git into a temporary folder and
  imported from there in a child process, so a fresh clone reproduces the "before" figure;
- pydantic v2 (http/validation.py) as it is in this checkout, in another child process.

Each figure is the best of 7 runs of 2,000 validations, in microseconds per validation, over 3 alternations of
the two processes. Prints a Markdown table for the README.
"""
from __future__ import annotations

import io
import json
import pathlib
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEFORE = "cc604d9"  # the last commit validating with the house DSL
RUNS, NUMBER, ROUNDS = 7, 2000, 3
LEAD = "7d3c2a3e-9b1f-4c55-8f0e-2b9d1c4e6a10"
# (label, module, DSL model at BEFORE, pydantic model now, body)
BODIES = [
    ("campaign create", "campaigns", "CAMPAIGN_CREATE", "CampaignCreate",
     {"name": " Spring outreach ", "channels": ["email", "telegram", "email"], "channelPriority": ["email", "telegram"],
      "scriptId": LEAD, "scheduledAt": "2026-12-02T09:30:00Z", "settings": {"templates": {"telegram": "Hi"}}}),
    ("campaign update", "campaigns", "CAMPAIGN_UPDATE", "CampaignUpdate",
     {"name": "Renamed", "status": "paused", "scheduledAt": ""}),
    ("assign leads", "campaigns", "LEAD_IDS", "LeadIds", {"leadIds": [LEAD] * 25}),
    ("lead create", "leads", "LEAD_CREATE", "LeadCreate",
     {"firstName": " Ann ", "lastName": "Lee", "email": "ann@example.com", "phone": "+14155551234",
      "company": "Acme", "telegramUsername": "@ann"}),
    ("lead update", "leads", "LEAD_UPDATE", "LeadUpdate", {"company": "Acme Inc", "status": "contacted"}),
    ("script create", "scripts", "SCRIPT_CREATE", "ScriptCreate",
     {"name": "Intro", "content": "Say hello. " * 40, "objectionHandlers": ["Too busy: offer a later call"] * 5}),
    ("email send", "email", "SEND", "EmailSend",
     {"leadId": LEAD, "subject": "A quick\n note", "body": "Hello there. " * 80, "toEmail": "ann@example.com"}),
    ("channel config", "channels", "CHANNEL_CONFIG", "ChannelConfigSave",
     {"channel": "email", "config": {"fromEmail": "sales@example.com", "fromName": "Sales"}, "status": "active"}),
    ("voice config", "voice", "VOICE_REPLACE", "VoiceReplace",
     {"selectedVoices": ["olena", "taras"], "language": "uk", "personality": "friendly", "speed": 1.1}),
    ("number purchase", "numbers", "NUMBER_BUY", "NumberPurchase", {"phoneNumber": " +14155551234 ", "label": "Main"}),
]

CHILD = """
import importlib, json, sys, timeit
from outreach.http import {extra}
bodies, runs, number, which = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
out = {{"file": importlib.import_module("outreach").__file__}}
for label, module, old, new, body in bodies:
    model = getattr(importlib.import_module("outreach.http." + module), old if which == "old" else new)
    call = (lambda: model.parse(body)) if which == "old" else (lambda: validation.parse(model, body))
    call()
    out[label] = min(timeit.repeat(call, repeat=runs, number=number)) / number * 1e6
print(json.dumps(out))
"""


def export_before(folder: pathlib.Path) -> None:
    """The package as it was at BEFORE, from git (a fresh clone has it)."""
    archive = subprocess.run(["git", "archive", "--format=tar", BEFORE, "outreach"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def keep_best(best: dict, figures: dict) -> None:
    for label, micros in figures.items():
        best[label] = min(micros, best.get(label, micros))


def measure(which: str, path: pathlib.Path) -> dict:
    code = CHILD.format(extra="schema" if which == "old" else "validation")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(BODIES), str(RUNS), str(NUMBER), which],
                            cwd=path, env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"}, check=True,
                            capture_output=True, text=True)
    figures = json.loads(result.stdout)
    assert figures.pop("file").startswith(str(path)), f"{which}: imported the package from elsewhere"
    return figures


def main() -> None:
    """ROUNDS alternations of the two processes, the best figure of each kept: the machine's other load
    touches both alike."""
    before, after = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        export_before(pathlib.Path(folder))
        for _ in range(ROUNDS):
            keep_best(before, measure("old", pathlib.Path(folder)))
            keep_best(after, measure("new", ROOT))
    print(f"| body | house DSL ({BEFORE}), µs | pydantic v2, µs | ratio |")
    print("|---|---|---|---|")
    for label, *_ in BODIES:
        print(f"| {label} | {before[label]:.1f} | {after[label]:.1f} | {after[label] / before[label]:.2f} |")
    total_before, total_after = sum(before.values()), sum(after.values())
    print(f"| **all 10, mean** | {total_before / len(BODIES):.1f} | {total_after / len(BODIES):.1f} | "
          f"{total_after / total_before:.2f} |")


if __name__ == "__main__":
    main()
