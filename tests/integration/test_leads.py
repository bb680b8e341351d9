"""Lead routes and the CSV import over HTTP and PostgreSQL."""
from __future__ import annotations

import uuid

import aiohttp

BASE = "/api/dashboard/leads"


def csv_form(content: bytes, filename: str = "leads.csv") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="text/csv")
    return form


async def test_create_get_update_delete(api):
    created = await api.post(BASE, json={"firstName": " Ivan ", "email": "Ivan@Example.com", "company": ""})
    assert created.status == 201
    lead = created.body
    assert lead["firstName"] == "Ivan" and lead["email"] == "Ivan@Example.com" and lead["company"] is None
    assert lead["status"] == "new" and lead["metadata"] == {} and lead["campaignId"] is None
    path = f"{BASE}/{lead['id']}"
    assert (await api.get(path)).body == lead
    updated = await api.patch(path, json={"status": "qualified", "telegramUsername": "@ivan"})
    assert updated.body["status"] == "qualified" and updated.body["telegramUsername"] == "ivan"
    assert (await api.put(path, json={"company": "Acme"})).body["company"] == "Acme"
    assert (await api.delete(path)).body == {"success": True}
    assert (await api.get(path)).status == 404


async def test_search_is_case_insensitive_substring_over_six_fields(api):
    await api.post(BASE, json={"firstName": "Olga", "company": "Globex"})
    await api.post(BASE, json={"lastName": "Petrenko", "phone": "+380501234567"})
    await api.post(BASE, json={"telegramUsername": "sales_bot", "email": "x@acme.io"})
    for term, expected in [("olg", 1), ("GLOBEX", 1), ("trenk", 1), ("0501", 1), ("SALES_", 1), ("acme.IO", 1),
                           ("%", 0), ("_", 1), ("zzz", 0)]:
        reply = await api.get(f"{BASE}?search={term}")
        assert reply.body["pagination"]["total"] == expected, (term, reply.body)


async def test_status_filter_and_pagination(api):
    for index in range(3):
        await api.post(BASE, json={"firstName": f"n{index}"})
    first = (await api.get(BASE)).body["leads"][0]
    await api.patch(f"{BASE}/{first['id']}", json={"status": "rejected"})
    assert (await api.get(f"{BASE}?status=rejected")).body["pagination"]["total"] == 1
    assert (await api.get(f"{BASE}?status=all")).body["pagination"]["total"] == 3
    page = (await api.get(f"{BASE}?limit=2&page=2")).body
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2, "totalCapped": False}
    assert len(page["leads"]) == 1
    assert (await api.get(f"{BASE}?limit=1000")).body["pagination"]["limit"] == 100
    assert (await api.get(f"{BASE}?page=-3")).body["pagination"]["page"] == 1


async def test_import_maps_aliases_skips_and_dedupes(api):
    await api.post(BASE, json={"email": "existing@example.com"})
    content = (
        "\ufeffFirst_Name,LAST_NAME,Email,phone,Telegram,company,timezone,ignored\n"
        "Ivan,Petrenko,ivan@example.com,+14155550199,ivan_tg,Acme,Europe/Kyiv,x\n"
        "Dup,,IVAN@example.com,,,,,\n"
        "Old,,Existing@Example.com,,,,,\n"
        ",,,,,OnlyCompany,,\n"
        "\n"
        "Tg,,,,@TgUser,,,\n"
        "TgDup,,,,tguser,,,\n"
    ).encode()
    reply = await api.post(BASE + "/import", data=csv_form(content))
    assert reply.status == 200, reply.body
    assert reply.body == {"success": True, "imported": 2, "total": 6, "skipped": 4, "duplicates": 3,
                          "errors": [{"row": 4, "error": "No contact information"}]}
    leads = (await api.get(BASE + "?search=petrenko")).body["leads"]
    assert leads[0]["timezone"] == "Europe/Kyiv" and leads[0]["telegramUsername"] == "ivan_tg"
    again = await api.post(BASE + "/import", data=csv_form(content))
    assert again.body["imported"] == 0 and again.body["duplicates"] == 5


async def test_import_of_many_rows(api, pool):
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)  # no lead quota
    rows = "\n".join(f"Lead{index},lead{index}@example.com" for index in range(5000))
    reply = await api.post(BASE + "/import", data=csv_form(f"firstName,email\n{rows}\n".encode()))
    assert reply.body["imported"] == 5000
    assert (await api.get(BASE + "?search=lead4999@")).body["pagination"]["total"] == 1


async def test_import_rejections_write_nothing(api, pool):
    cases = [
        (csv_form(b"email\na@x.com\n", "leads.txt"), 400, "Only CSV files are supported"),
        (csv_form(b""), 400, "The CSV file is empty"),
        (csv_form(b"foo,bar\n1,2\n"), 400, None),
        (csv_form(b"email\n\xff\xfe\n"), 400, "The file is not UTF-8 text"),
        (csv_form(b"company\nAcme\n"), 400, "No valid rows found in CSV"),
        (csv_form(b"email\n" + b"a@example.com\n" * 80_000), 413, None),
    ]
    for form, status, message in cases:
        reply = await api.post(BASE + "/import", data=form)
        assert reply.status == status, reply.body
        if message:
            assert reply.body["error"] == message
    no_file = aiohttp.FormData()
    no_file.add_field("other", "x", content_type="text/plain")  # forces multipart
    assert (await api.post(BASE + "/import", data=no_file)).body == {"error": "No file provided"}
    not_multipart = await api.post(BASE + "/import", json={"file": "x"})
    assert not_multipart.status == 400
    assert await pool.fetchval("SELECT count(*) FROM leads") == 0


async def test_bad_input(api):
    lead = (await api.post(BASE, json={"firstName": "Keep"})).body
    path = f"{BASE}/{lead['id']}"
    cases = [
        ("POST", BASE, {"json": {}}, 400, "At least one contact field is required"),
        ("POST", BASE, {"json": {"company": "Acme"}}, 400, "At least one contact field is required"),
        ("POST", BASE, {"json": {"email": 5}}, 400, "email must be a string"),
        ("POST", BASE, {"json": {"firstName": ["x"]}}, 400, "firstName must be a string"),
        ("POST", BASE, {"raw": b"{", "headers": {"Content-Type": "application/json"}}, 400, "Invalid JSON body"),
        ("PATCH", path, {"json": {}}, 400, "No fields to update"),
        ("PATCH", path, {"json": {"status": "won"}}, 400, "Invalid status"),
        ("PATCH", path, {"json": {"status": None}}, 400, "Invalid status"),
        ("PATCH", path, {"json": {"firstName": None}}, 400, "At least one contact field is required"),
        ("PATCH", path, {"json": {"phone": 12}}, 400, "phone must be a string"),
        ("PUT", path, {"raw": b"[]"}, 400, "Request body must be a JSON object"),
        ("GET", BASE + "?page=abc", {}, 400, "page must be a whole number"),
        ("GET", BASE + "?limit=x", {}, 400, "limit must be a whole number"),
        ("GET", BASE + "?status=hot", {}, 400, None),
        ("GET", f"{BASE}/123", {}, 404, "Not found"),
        ("PATCH", f"{BASE}/{uuid.uuid4()}", {"json": {"firstName": "x"}}, 404, "Not found"),
        ("DELETE", f"{BASE}/zzz", {}, 404, "Not found"),
    ]
    for method, target, kwargs, status, message in cases:
        reply = await api.call(method, target, **kwargs)
        assert reply.status == status, (method, target, kwargs, reply.body)
        assert "error" in reply.body
        if message:
            assert reply.body["error"] == message, (method, target, reply.body)
    assert (await api.get(path)).body == lead


async def test_overlong_contact_fields_are_400s_not_500s(api, pool):
    """Regression (found fuzzing from the OpenAPI document): text past PostgreSQL's index entry limit (~2.7 kB)
    in an indexed contact field made every write path answer 500."""
    lead = (await api.post(BASE, json={"firstName": "Keep"})).body
    long_hex = uuid.uuid4().hex * 125  # 4000 characters that do not compress
    for field, limit in (("email", 320), ("phone", 64), ("telegramUsername", 64), ("firstName", 200)):
        reply = await api.post(BASE, json={field: long_hex})
        assert (reply.status, reply.body) == (400, {"error": f"{field} must be at most {limit} characters"})
        reply = await api.patch(f"{BASE}/{lead['id']}", json={field: long_hex})
        assert (reply.status, reply.body) == (400, {"error": f"{field} must be at most {limit} characters"})
    assert (await api.post(BASE, json={"email": "x" * 300 + "@example.com"})).status == 201  # at the limit
    reply = await api.post(BASE + "/import", data=csv_form(f"email\n{long_hex}@example.com\nok@example.com\n".encode()))
    assert reply.status == 200 and reply.body["imported"] == 1
    assert reply.body["errors"] == [{"row": 1, "error": "email must be at most 320 characters"}]
    assert await pool.fetchval("SELECT count(*) FROM leads") == 3


async def test_import_with_a_malformed_part_header_is_a_400(api, pool):
    """Regression (found fuzzing): a part header aiohttp cannot parse raised past the handler as a 500."""
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"\x85a\x0c\"\r\n\r\nx\r\n--{boundary}--\r\n"
            ).encode()
    reply = await api.post(BASE + "/import", raw=body,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 400 and reply.body["error"].startswith("Malformed multipart body")
    assert await pool.fetchval("SELECT count(*) FROM leads") == 0
