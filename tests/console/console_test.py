"""Browser test of the Cairn console: a real headless Chromium (Debian's package) driven by
Playwright against a running `cairn server`. Run by tests/e2e/console.rs, which starts the
server and passes it in the environment:

  CAIRN_CONSOLE_URL   the admin port's URL (the console is served at /)
  CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY   the root key
  CAIRN_USER_ACCESS_KEY / CAIRN_USER_SECRET_KEY   another key (the `nonroot` and
                      `permissions` journeys)
  CAIRN_S3_URL        the S3 endpoint, for anonymous requests (the `permissions` journey)
  CAIRN_CLUSTER_SECRET   to stop and start a datanode through the admin API
  CAIRN_SCREENSHOTS   directory for the screenshots
  CHROMIUM            the browser executable (default /usr/bin/chromium)

`python console_test.py main` walks the whole user journey; `python console_test.py expiry`
checks what an expired session shows (the server runs with a 2-second session lifetime);
`python console_test.py nonroot` checks that another key sees no cluster view nor keys page;
`python console_test.py permissions` edits a bucket's policy, Block Public Access and Object
Ownership, a key's policy and the cluster-wide Block Public Access, and checks what an
anonymous request gets; `python console_test.py governance` sets a bucket quota, sees an
upload past it refused and the usage against it, and the lifecycle card.
Exits non-zero with a message on the first failed check.
"""

import hashlib
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request

from playwright.sync_api import expect, sync_playwright

URL = os.environ["CAIRN_CONSOLE_URL"].rstrip("/")
AK = os.environ["CAIRN_ACCESS_KEY"]
SK = os.environ["CAIRN_SECRET_KEY"]
SHOTS = os.environ.get("CAIRN_SCREENSHOTS", "console-screenshots")
os.makedirs(SHOTS, exist_ok=True)


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def admin(method, path, body=b""):
    req = urllib.request.Request(
        URL + path,
        method=method,
        headers={"Authorization": "Bearer " + os.environ["CAIRN_CLUSTER_SECRET"]},
        data=body,
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def anonymous_get(url):
    """(status, body) of an unsigned GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def login(page, secret=SK, access_key=AK):
    page.goto(URL + "/")
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#login-ak", access_key)
    page.fill("#login-sk", secret)
    page.click("#login-submit")


def main_journey(page, tmp):
    # Wrong password: a clear message, still on the login screen.
    login(page, secret="not-the-secret")
    expect(page.locator("#login-error")).to_contain_text("Wrong access key or secret")
    shot(page, "01-login-error")
    login(page)
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(AK)

    # Buckets: name validation feedback, then a real bucket.
    page.fill("#new-bucket", "Bad_Name")
    expect(page.locator("#bucket-hint")).to_contain_text("lowercase")
    page.fill("#new-bucket", "photos")
    page.click("#create-bucket")
    expect(page.locator('tr[data-bucket="photos"]')).to_be_visible()
    # Its default encryption: set to SSE-S3, kept across a reload.
    page.check('tr[data-bucket="photos"] input.encryption')
    expect(page.locator("#banner")).to_contain_text("Default encryption set to SSE-S3")
    page.reload()
    expect(page.locator('tr[data-bucket="photos"] input.encryption')).to_be_checked()
    expect(page.locator('tr[data-bucket="photos"]')).to_contain_text("SSE-S3")
    shot(page, "02-buckets")

    # Into the bucket: empty state, a folder, two uploads through the file picker.
    page.click('tr[data-bucket="photos"] a')
    expect(page.locator("#empty-folder")).to_be_visible()
    page.once("dialog", lambda d: d.accept("2026"))
    page.click("#new-folder")
    expect(page.locator("#crumbs")).to_contain_text("2026")
    small = os.path.join(tmp, "small.txt")
    big = os.path.join(tmp, "big.bin")
    with open(small, "wb") as f:
        f.write(b"hello from the console\n" * 100)
    with open(big, "wb") as f:
        f.write(os.urandom(20 * 1024 * 1024))
    page.set_input_files("#file-input", [small, big])
    for name in ("small.txt", "big.bin"):
        row = page.locator(f'div[data-upload="{name}"]')
        expect(row).to_have_attribute("data-done", "1", timeout=120_000)
    expect(page.locator('div[data-upload="big.bin"] .status')).to_contain_text("Uploaded 20.0 MiB")
    expect(page.locator('div[data-upload="big.bin"] .bar > span')).to_have_attribute("style", "width: 100%;")
    expect(page.locator('tr[data-key="2026/small.txt"]')).to_be_visible()
    expect(page.locator('tr[data-key="2026/big.bin"]')).to_be_visible()
    shot(page, "03-uploads")

    # Breadcrumbs back to the bucket root, where the folder is listed; into it again.
    page.click('#crumbs a:text-is("photos")')
    expect(page.locator('tr[data-folder="2026/"]')).to_be_visible()
    page.click('tr[data-folder="2026/"] a')
    expect(page.locator('tr[data-key="2026/big.bin"]')).to_be_visible()

    # Details: size, a multipart ETag (three 8 MiB parts), where the shards are.
    page.click('tr[data-key="2026/big.bin"] a.object-link')
    expect(page.locator("#details")).to_contain_text("20971520 bytes")
    expect(page.locator("#detail-etag")).to_contain_text("-3")
    expect(page.locator("#detail-shards")).to_contain_text("dn")
    expect(page.locator("#details")).to_contain_text("erasure coded 4+2")
    # Encrypted at rest by the server's default (SSE-S3).
    expect(page.locator("#detail-encryption")).to_have_text("SSE-S3 (AES-256-GCM)")
    shot(page, "04-details")

    # Download and compare bytes.
    with page.expect_download() as dl:
        page.click("#download")
    path = os.path.join(tmp, "downloaded.bin")
    dl.value.save_as(path)
    want = hashlib.md5(open(big, "rb").read()).hexdigest()
    got = hashlib.md5(open(path, "rb").read()).hexdigest()
    assert got == want, f"downloaded bytes differ: {got} != {want}"

    # Share link, fetched with no credentials at all.
    page.select_option("#share-expiry", "3600")
    page.click("#share")
    expect(page.locator("#share-url")).to_be_visible()
    link = page.locator("#share-url").input_value()
    with urllib.request.urlopen(link, timeout=60) as r:
        shared = r.read()
    assert hashlib.md5(shared).hexdigest() == want, "the share link served other bytes"
    page.click("#copy-share")
    page.click("#modal-close")

    # A bucket whose default storage class is REDUCED_REDUNDANCY: the details say so and
    # show the class's own erasure coding (one parity shard fewer).
    admin("PUT", "/admin/buckets/photos/storage-class", b'{"class": "REDUCED_REDUNDANCY"}')
    r = page.request.put(URL + "/console/api/buckets/photos/upload?key=2026/rrs.bin", data=os.urandom(1 << 20))
    assert r.ok, r.text()
    admin("DELETE", "/admin/buckets/photos/storage-class")
    page.click('button:text-is("Refresh")')
    page.click('tr[data-key="2026/rrs.bin"] a.object-link')
    expect(page.locator("#detail-class")).to_have_text("REDUCED_REDUNDANCY")
    expect(page.locator("#detail-scheme")).to_have_text("erasure coded 4+1")
    shot(page, "04b-details-storage-class")
    page.click("#modal-close")

    # Delete them (multi-select).
    page.check('input.select[data-key="2026/small.txt"]')
    page.check('input.select[data-key="2026/big.bin"]')
    page.check('input.select[data-key="2026/rrs.bin"]')
    page.once("dialog", lambda d: d.accept())
    page.click("#delete-selected")
    expect(page.locator('tr[data-key="2026/big.bin"]')).to_have_count(0)
    expect(page.locator("#banner")).to_contain_text("Deleted 3")

    # A bucket that vanishes between clicks.
    page.goto(URL + "/#/buckets")
    page.fill("#new-bucket", "ghost")
    page.click("#create-bucket")
    page.click('tr[data-bucket="ghost"] a')
    expect(page.locator("#empty-folder")).to_be_visible()
    r = page.request.delete(URL + "/console/api/buckets/ghost")
    assert r.ok, r.text()
    page.click('button:text-is("Refresh")')
    expect(page.locator("#object-list")).to_contain_text("no longer exists")
    shot(page, "05-vanished-bucket")

    # Deleting a non-empty bucket says why.
    page.goto(URL + "/#/buckets")
    r = page.request.put(URL + "/console/api/buckets/photos/upload?key=keep.txt", data=b"x")
    assert r.ok, r.text()
    page.reload()
    page.once("dialog", lambda d: d.accept())
    page.click('tr[data-bucket="photos"] button.delete-bucket')
    expect(page.locator("#banner")).to_contain_text("not empty")

    # Dashboard: a stopped datanode shows as stopped; a scrub's results appear.
    for i in range(3):
        r = page.request.put(URL + f"/console/api/buckets/photos/upload?key=data/{i}.bin", data=os.urandom(6 << 20))
        assert r.ok, r.text()
    page.click("#nav-dashboard")
    expect(page.locator("#nodes")).to_be_visible()
    expect(page.locator('tr[data-node="2"] .pill')).to_have_attribute("data-state", "up")
    # Each datanode's space amplification (bytes on disk over live bytes) is shown.
    expect(page.locator('tr[data-node="1"] .amp')).to_have_text(re.compile(r"· \d+\.\d\d×"))
    admin("POST", "/admin/datanodes/2/stop")
    expect(page.locator('tr[data-node="2"] .pill')).to_have_attribute("data-state", "stopped", timeout=20_000)
    expect(page.locator("#stat-up")).to_contain_text("5 / 6")
    expect(page.locator("#meta-info")).to_contain_text("meta, data, gateway")
    shot(page, "06-dashboard-node-down")
    admin("POST", "/admin/datanodes/2/start")
    expect(page.locator('tr[data-node="2"] .pill')).to_have_attribute("data-state", "up", timeout=20_000)
    page.click("#start-scrub")
    expect(page.locator("#scrub-last")).to_contain_text("light", timeout=60_000)
    expect(page.locator("#scrub-found")).to_contain_text("missing 0")
    expect(page.locator("#ring-chart .chart-row")).to_have_count(6)
    shot(page, "07-dashboard-scrub")

    # Background workers: every job is listed; the scrub just run counts as a round of the
    # scrub worker; GC pauses and resumes from the page.
    for name in ["cluster-watcher", "compaction", "gc", "repair", "scrub"]:
        expect(page.locator(f'#workers tr[data-worker="{name}"]')).to_be_visible()
    expect(page.locator('#workers tr[data-worker="scrub"] td.num')).to_have_text("1", timeout=20_000)
    expect(page.locator('#workers tr[data-worker="scrub"]')).to_contain_text("last scrub")
    page.click('#workers tr[data-worker="gc"] button.pause-worker')
    expect(page.locator('#workers tr[data-worker="gc"] .pill')).to_have_attribute("data-state", "paused", timeout=20_000)
    assert b'"paused": true' in admin("GET", "/admin/workers")
    shot(page, "07b-dashboard-workers")
    page.click('#workers tr[data-worker="gc"] button.resume-worker')
    expect(page.locator('#workers tr[data-worker="gc"] button.pause-worker')).to_be_visible(timeout=20_000)
    expect(page.locator('#workers tr[data-worker="gc"] .pill')).not_to_have_attribute("data-state", "paused")

    # Phone width: the same pages still work.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(URL + "/#/buckets")
    expect(page.locator('tr[data-bucket="photos"]')).to_be_visible()
    shot(page, "08-phone-buckets")
    page.set_viewport_size({"width": 1280, "height": 800})

    # Log out: back to the login screen, and the API refuses the old page.
    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("signed out")
    r = page.request.get(URL + "/console/api/buckets")
    assert r.status == 401, f"after logout the API answered {r.status}"


def expiry_journey(page, tmp):
    login(page)
    expect(page.locator("#app")).to_be_visible()
    time.sleep(3)
    page.click("#nav-dashboard")
    expect(page.locator("#login-error")).to_contain_text("session has expired")
    shot(page, "09-session-expired")


def nonroot_journey(page, tmp):
    # The cluster view names every key's buckets and objects: another key gets no tab for it,
    # its address falls back to the buckets, and the API answers 403.
    user = os.environ["CAIRN_USER_ACCESS_KEY"]
    login(page, secret=os.environ["CAIRN_USER_SECRET_KEY"], access_key=user)
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#who")).to_have_text(user)
    expect(page.locator("#bucket-list")).to_be_visible()
    expect(page.locator("#nav-dashboard")).to_be_hidden()
    expect(page.locator("#nav-buckets")).to_be_visible()
    page.goto(URL + "/#/dashboard")
    expect(page.locator("#banner")).to_contain_text("only for the root key")
    expect(page.locator("#bucket-list")).to_be_visible()
    expect(page.locator("#dashboard")).to_have_count(0)
    r = page.request.get(URL + "/console/api/cluster")
    assert r.status == 403, f"the cluster view answered {r.status} to another key"
    shot(page, "10-non-root-no-cluster")
    # Nor the keys page (key policies, cluster-wide Block Public Access).
    expect(page.locator("#nav-keys")).to_be_hidden()
    page.goto(URL + "/#/keys")
    expect(page.locator("#banner")).to_contain_text("only for the root key")
    expect(page.locator("#bucket-list")).to_be_visible()
    for path in ("/console/api/keys", "/console/api/public-access-block"):
        r = page.request.get(URL + path)
        assert r.status == 403, f"{path} answered {r.status} to another key"
    # Its own bucket's Permissions tab works: the calls are the key's own.
    page.fill("#new-bucket", "mine")
    page.click("#create-bucket")
    page.click('tr[data-bucket="mine"] a')
    page.click("#tab-permissions")
    expect(page.locator("#perm-public")).to_have_attribute("data-public", "false")
    expect(page.locator("#ownership-state")).to_have_attribute("data-ownership", "")


def public_read(bucket, action):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
        "Action": action, "Resource": f"arn:aws:s3:::{bucket}/*"}]}, indent=2)


def permissions_journey(page, tmp):
    s3 = os.environ["CAIRN_S3_URL"].rstrip("/")
    user = os.environ["CAIRN_USER_ACCESS_KEY"]
    login(page)
    expect(page.locator("#app")).to_be_visible()
    page.fill("#new-bucket", "site")
    page.click("#create-bucket")
    expect(page.locator('tr[data-bucket="site"]')).to_be_visible()
    body = b"<h1>hello from a public bucket</h1>\n"
    r = page.request.put(URL + "/console/api/buckets/site/upload?key=index.html", data=body,
                         headers={"content-type": "text/html"})
    assert r.ok, r.text()
    status, _ = anonymous_get(s3 + "/site/index.html")
    assert status == 403, f"a private object answered {status} to an anonymous GET"

    # The bucket's Permissions tab: nothing set, not public.
    page.click('tr[data-bucket="site"] a')
    page.click("#tab-permissions")
    expect(page.locator("#tab-permissions")).to_have_class("tab active")
    pill = page.locator("#perm-public")
    expect(pill).to_have_attribute("data-public", "false")
    expect(pill).to_have_text("Not public")
    expect(page.locator("#pab-state")).to_have_attribute("data-set", "false")
    expect(page.locator("#delete-policy")).to_be_disabled()

    # A policy S3 refuses: its message is shown next to the editor, nothing is stored.
    err = page.locator("#policy-editor-error")
    page.fill("#policy-editor", public_read("site", "s3:GetObjekt"))
    page.click("#save-policy")
    expect(err).to_contain_text("MalformedPolicy")
    expect(err).to_contain_text("s3:GetObjekt")
    shot(page, "11-policy-malformed")
    r = page.request.get(URL + "/console/api/buckets/site/policy")
    assert r.json() == {"policy": None}, r.text()

    # A public-read policy: saved, the bucket says public, and an anonymous GET works.
    page.fill("#policy-editor", public_read("site", "s3:GetObject"))
    page.click("#save-policy")
    expect(pill).to_have_attribute("data-public", "true")
    expect(pill).to_have_text("Public")
    expect(err).to_be_hidden()
    expect(page.locator("#delete-policy")).to_be_enabled()
    status, got = anonymous_get(s3 + "/site/index.html")
    assert (status, got) == (200, body), f"anonymous GET after the public policy: {status} {got!r}"
    shot(page, "12-policy-public")

    # Block Public Access on the bucket: saving a public policy is refused, with S3's reason.
    page.check("#pab-block_public_policy")
    page.click("#save-pab")
    expect(page.locator("#pab-state")).to_have_attribute("data-set", "true")
    page.click("#save-policy")
    expect(err).to_contain_text("AccessDenied")
    expect(err).to_contain_text("Block Public Access")
    shot(page, "13-policy-blocked")

    # Object Ownership: BucketOwnerEnforced, read back after a reload.
    page.select_option("#ownership", "BucketOwnerEnforced")
    page.click("#save-ownership")
    expect(page.locator("#ownership-state")).to_have_attribute("data-ownership", "BucketOwnerEnforced")
    page.reload()
    expect(page.locator("#ownership-state")).to_have_attribute("data-ownership", "BucketOwnerEnforced")
    expect(page.locator("#ownership")).to_have_value("BucketOwnerEnforced")
    expect(page.locator("#pab-block_public_policy")).to_be_checked()
    expect(page.locator("#pab-ignore_public_acls")).not_to_be_checked()
    expect(page.locator("#policy-editor")).to_have_value(public_read("site", "s3:GetObject"))
    shot(page, "14-permissions-read-back")
    page.click("#remove-pab")
    expect(page.locator("#pab-state")).to_have_attribute("data-set", "false")
    expect(page.locator("#pab-block_public_policy")).not_to_be_checked()

    # The keys page: root sets a policy on the second key and reads it back.
    page.click("#nav-keys")
    row = page.locator(f'tr[data-ak="{user}"]')
    expect(row.locator(".policy-state")).to_have_attribute("data-policy", "no")
    expect(page.locator(f'tr[data-ak="{AK}"] button.edit-policy')).to_be_disabled()
    row.locator("button.edit-policy").click()
    editor = page.locator("#key-policy-editor")
    expect(editor).to_have_value("")
    # An identity policy names no principal: refused with the parser's reason.
    page.fill("#key-policy-editor", public_read("site", "s3:GetObject"))
    page.click("#save-key-policy")
    expect(page.locator("#key-policy-editor-error")).to_contain_text("MalformedPolicy")
    expect(page.locator("#key-policy-editor-error")).to_contain_text("Principal")
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": "arn:aws:s3:::site/uploads/*"}]})
    page.fill("#key-policy-editor", doc)
    page.click("#save-key-policy")
    expect(page.locator("#modal")).to_be_hidden()
    expect(row.locator(".policy-state")).to_have_attribute("data-policy", "yes")
    row.locator("button.edit-policy").click()
    expect(editor).to_have_value(doc)
    shot(page, "15-key-policy")
    page.click("#modal-close")
    stored = admin("GET", f"/admin/keys/{user}/policy")
    assert json.loads(stored) == json.loads(doc), stored

    # Cluster-wide Block Public Access: RestrictPublicBuckets takes the public policy's grant
    # from anonymous requests; removing it gives it back.
    page.check("#cpab-restrict_public_buckets")
    page.click("#save-cluster-pab")
    expect(page.locator("#banner")).to_contain_text("Cluster-wide Block Public Access saved")
    assert json.loads(admin("GET", "/admin/public-access-block"))["restrict_public_buckets"] is True
    status, _ = anonymous_get(s3 + "/site/index.html")
    assert status == 403, f"anonymous GET with RestrictPublicBuckets: {status}"
    page.reload()
    expect(page.locator("#cpab-restrict_public_buckets")).to_be_checked()
    expect(page.locator("#cpab-block_public_acls")).not_to_be_checked()
    shot(page, "16-cluster-block-public-access")
    page.click("#remove-cluster-pab")
    expect(page.locator("#cpab-restrict_public_buckets")).not_to_be_checked()
    assert json.loads(admin("GET", "/admin/public-access-block"))["restrict_public_buckets"] is False
    status, got = anonymous_get(s3 + "/site/index.html")
    assert (status, got) == (200, body), f"anonymous GET after removing it: {status}"


def governance_journey(page, tmp):
    """Quotas and lifecycle in the console: the root key sets a bucket's quota from the bucket
    list, an upload past it fails with the server's QuotaExceeded, the usage shows against
    the quota, and the cluster view shows the lifecycle runs."""
    login(page)
    expect(page.locator("#app")).to_be_visible()
    page.fill("#new-bucket", "capped")
    page.click("#create-bucket")
    row = page.locator('tr[data-bucket="capped"]')
    expect(row.locator(".quota")).to_contain_text("none")
    answers = iter(["3K", "5"])
    page.on("dialog", lambda d: d.accept(next(answers)))
    row.locator(".set-quota").click()
    expect(row.locator(".quota")).to_contain_text("0 B of 3.0 KiB · 0 of 5 objects")
    shot(page, "20-quota-set")
    page.click('tr[data-bucket="capped"] a')
    fits = os.path.join(tmp, "fits.txt")
    too_big = os.path.join(tmp, "too-big.bin")
    with open(fits, "wb") as f:
        f.write(b"x" * 2048)
    with open(too_big, "wb") as f:
        f.write(os.urandom(2048))
    page.set_input_files("#file-input", [fits])
    expect(page.locator('div[data-upload="fits.txt"]')).to_have_attribute("data-done", "1", timeout=60_000)
    page.set_input_files("#file-input", [too_big])
    expect(page.locator('div[data-upload="too-big.bin"] .status')).to_contain_text("quota", timeout=60_000)
    shot(page, "21-quota-refused")
    page.goto(URL + "/#/")
    expect(page.locator('tr[data-bucket="capped"] .quota')).to_contain_text("2.0 KiB of 3.0 KiB · 1 of 5 objects")
    expect(page.locator('tr[data-bucket="capped"] .quota-full')).to_have_count(0)
    page.click("#nav-dashboard")
    expect(page.locator("#lifecycle-info")).to_contain_text("All runs")
    shot(page, "22-lifecycle-card")


def run(journey):
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        ctx.set_default_timeout(20_000)
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            journey(page, tmp)
        except Exception:
            shot(page, f"failure-{journey.__name__}")
            raise
        finally:
            browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "main"
    run({"main": main_journey, "expiry": expiry_journey, "nonroot": nonroot_journey,
         "permissions": permissions_journey, "governance": governance_journey}[which])
    print(f"console {which} journey: ok")
