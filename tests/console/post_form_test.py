"""Browser test of POST Object (browser form uploads): a real headless Chromium (Debian's
package) driven by Playwright submits HTML forms signed by `cairn presign-post`. Run by
tests/e2e/post_object_browser.rs, which starts the server and passes in the environment:

  CAIRN_BIN           the `cairn` binary (its `presign-post` signs the forms)
  CAIRN_S3_URL        the server's S3 endpoint
  CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY   the key that signs
  CAIRN_BUCKET        the bucket the forms upload into
  CAIRN_SCREENSHOTS   directory for the screenshots
  CHROMIUM            the browser executable (default /usr/bin/chromium)

The script serves the pages itself (a small HTTP server on 127.0.0.1): `/upload.html`, a
form that allows up to 10 MiB and redirects to `/done` on this server, and `/small.html`,
whose form allows at most 10 bytes. The browser uploads a file with the first (and must
land on `/done` with the bucket, key and ETag in the query) and a larger file with the
second (and must see the error document). Prints one JSON line with what it saw; exits
non-zero with a message on the first failed check.
"""

import hashlib
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse

from playwright.sync_api import sync_playwright

S3 = os.environ["CAIRN_S3_URL"].rstrip("/")
BUCKET = os.environ["CAIRN_BUCKET"]
SHOTS = os.environ.get("CAIRN_SCREENSHOTS", "post-form-screenshots")
os.makedirs(SHOTS, exist_ok=True)


def presign_page(key, length_range, redirect, extra):
    args = [
        os.environ["CAIRN_BIN"], "presign-post", BUCKET,
        "--endpoint", S3,
        "--key", key,
        "--content-length-range", length_range,
        "--redirect", redirect,
        "--html",
    ] + extra
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return out.stdout


class Pages(http.server.BaseHTTPRequestHandler):
    pages = {}

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/done":
            body = b"<!DOCTYPE html><html><body><h1 id='done'>Uploaded</h1></body></html>"
        elif path in self.pages:
            body = self.pages[path].encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    site = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Pages.pages["/upload.html"] = presign_page(
        "uploads/${filename}", "0,10485760", site + "/done",
        ["--field", "x-amz-meta-origin=browser", "--starts-with", "Content-Type=text/"],
    )
    Pages.pages["/small.html"] = presign_page("small/${filename}", "0,10", site + "/done", [])

    seen = {}
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page()
        page.set_default_timeout(20_000)
        try:
            # 1. A file within the limits: stored, then the browser lands on /done.
            content = b"Hello from a browser form.\n" * 40
            note = os.path.join(tmp, "hello.txt")
            with open(note, "wb") as f:
                f.write(content)
            page.goto(site + "/upload.html")
            page.fill("input[name='Content-Type']", "text/plain")
            page.set_input_files("#file", note)
            page.screenshot(path=os.path.join(SHOTS, "post-01-form.png"), full_page=True)
            page.click("#upload-submit")
            page.wait_for_url(lambda url: url.startswith(site + "/done?"))
            page.wait_for_selector("#done")
            page.screenshot(path=os.path.join(SHOTS, "post-02-done.png"), full_page=True)
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
            assert query.get("bucket") == BUCKET, f"redirect query {query}"
            assert query.get("key") == "uploads/hello.txt", f"redirect query {query}"
            want = '"' + hashlib.md5(content).hexdigest() + '"'
            assert query.get("etag") == want, f"redirect etag {query.get('etag')} != {want}"
            seen["uploaded"] = {"key": query["key"], "size": len(content), "etag": query["etag"]}

            # 2. A file larger than the form allows: the browser sees the error document.
            big = os.path.join(tmp, "big.txt")
            with open(big, "wb") as f:
                f.write(b"x" * 100)
            page.goto(site + "/small.html")
            page.set_input_files("#file", big)
            with page.expect_navigation():
                page.click("#upload-submit")
            text = page.content()
            page.screenshot(path=os.path.join(SHOTS, "post-03-too-large.png"), full_page=True)
            assert "EntityTooLarge" in text, f"the browser saw: {text[:2000]}"
            assert page.url.startswith(S3), f"the browser is at {page.url}"
            seen["refused"] = {"key": "small/big.txt", "code": "EntityTooLarge"}
        finally:
            browser.close()
            server.shutdown()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
    sys.exit(0)
