"""Walks Cairn with boto3 at its default settings (checksums, signing).

Needs CAIRN_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY in the environment.
"""
import hashlib
import os
import sys

import tempfile

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1")


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}"
        return
    raise AssertionError(f"expected {code}, call succeeded")


s3.create_bucket(Bucket="boto-bucket")
s3.create_bucket(Bucket="boto-bucket")  # us-east-1: a repeat by the owner is a 200
expect_error("BucketAlreadyExists", s3.create_bucket, Bucket="boto-bucket", ACL="public-read")
assert "boto-bucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
s3.head_bucket(Bucket="boto-bucket")

keys = ['plain.txt', 'odd &+-é" name.txt', 'dir/a b/c+d.bin', 'unicode/日本語.txt']
bodies = {}
for i, key in enumerate(keys):
    body = os.urandom(1000 * (i + 1) + 70_000 * (i % 2))
    bodies[key] = body
    r = s3.put_object(Bucket="boto-bucket", Key=key, Body=body, Metadata={"idx": str(i)})
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), r["ETag"]

big = os.urandom(6 * 1024 * 1024 + 17)
s3.put_object(Bucket="boto-bucket", Key="big.bin", Body=big)
bodies["big.bin"] = big

for key, body in bodies.items():
    got = s3.get_object(Bucket="boto-bucket", Key=key)
    assert got["Body"].read() == body, key
head = s3.head_object(Bucket="boto-bucket", Key=keys[1])
assert head["Metadata"] == {"idx": "1"}, head["Metadata"]
assert head["ContentLength"] == len(bodies[keys[1]])

part = s3.get_object(Bucket="boto-bucket", Key="big.bin", Range="bytes=4194300-4194310")
assert part["Body"].read() == big[4194300:4194311]
assert part["ContentRange"] == "bytes 4194300-4194310/%d" % len(big)
expect_error("InvalidRange", s3.get_object, Bucket="boto-bucket", Key="big.bin",
             Range="bytes=%d-" % (len(big) + 5))

# Managed transfers: multipart upload and multipart server-side copy in 5 MiB parts.
mib = 1024 * 1024
config = TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib)
multi = os.urandom(12 * mib + 333)
with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "multi.bin")
    with open(src, "wb") as f:
        f.write(multi)
    s3.upload_file(src, "boto-bucket", "multi.bin", Config=config)
    back = os.path.join(tmp, "back.bin")
    s3.download_file("boto-bucket", "multi.bin", back)
    with open(back, "rb") as f:
        assert f.read() == multi, "multipart upload differs"
head = s3.head_object(Bucket="boto-bucket", Key="multi.bin")
assert head["ETag"].endswith('-3"'), head["ETag"]
assert head["ContentLength"] == len(multi)
bodies["multi.bin"] = multi
s3.copy({"Bucket": "boto-bucket", "Key": "multi.bin"}, "boto-bucket", "multi-copy.bin", Config=config)
assert s3.get_object(Bucket="boto-bucket", Key="multi-copy.bin")["Body"].read() == multi
bodies["multi-copy.bin"] = multi
r = s3.copy_object(Bucket="boto-bucket", Key="plain-copy.txt",
                   CopySource={"Bucket": "boto-bucket", "Key": "plain.txt"})
assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(bodies["plain.txt"]).hexdigest()
bodies["plain-copy.txt"] = bodies["plain.txt"]

# Low-level multipart calls: list and abort.
up = s3.create_multipart_upload(Bucket="boto-bucket", Key="aborted.bin")
s3.upload_part(Bucket="boto-bucket", Key="aborted.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 100)
ups = s3.list_multipart_uploads(Bucket="boto-bucket")["Uploads"]
assert [u["UploadId"] for u in ups] == [up["UploadId"]], ups
assert len(s3.list_parts(Bucket="boto-bucket", Key="aborted.bin", UploadId=up["UploadId"])["Parts"]) == 1
s3.abort_multipart_upload(Bucket="boto-bucket", Key="aborted.bin", UploadId=up["UploadId"])
expect_error("NoSuchUpload", s3.list_parts, Bucket="boto-bucket", Key="aborted.bin", UploadId=up["UploadId"])

listed = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="boto-bucket", PaginationConfig={"PageSize": 2}):
    listed += [o["Key"] for o in page.get("Contents", [])]
assert listed == sorted(bodies), listed
v1 = s3.list_objects(Bucket="boto-bucket", Delimiter="/")
assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["dir/", "unicode/"], v1
res = s3.list_objects_v2(Bucket="boto-bucket", Prefix="dir/a b/")
assert [o["Key"] for o in res["Contents"]] == ["dir/a b/c+d.bin"]

url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": keys[1]}, ExpiresIn=60)
import urllib.request
with urllib.request.urlopen(url) as resp:
    assert resp.read() == bodies[keys[1]]

# User metadata with a non-ASCII character reads back as botocore sent it.
# (botocore refuses non-ASCII Metadata=, so set the header the way s3-tests does.)
def greeting(params, **kwargs):
    params["headers"]["x-amz-meta-greeting"] = "Hello World\xe9"
s3.meta.events.register("before-call.s3.PutObject", greeting)
s3.put_object(Bucket="boto-bucket", Key="meta", Body=b"m")
s3.meta.events.unregister("before-call.s3.PutObject", greeting)
assert s3.head_object(Bucket="boto-bucket", Key="meta")["Metadata"] == {"greeting": "Hello World\xe9"}
attrs = s3.get_object_attributes(Bucket="boto-bucket", Key="meta", ObjectAttributes=["ETag", "ObjectSize"])
assert attrs["ObjectSize"] == 1 and attrs["ETag"] == hashlib.md5(b"m").hexdigest(), attrs

# A public-read object is readable without credentials; a private one is not.
from botocore import UNSIGNED
from botocore.client import Config
anon = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1",
                    config=Config(signature_version=UNSIGNED))
s3.put_object_acl(Bucket="boto-bucket", Key="meta", ACL="public-read")
assert anon.get_object(Bucket="boto-bucket", Key="meta")["Body"].read() == b"m"
expect_error("AccessDenied", anon.get_object, Bucket="boto-bucket", Key=keys[0])
expect_error("AccessDenied", anon.list_objects_v2, Bucket="boto-bucket")
s3.delete_object(Bucket="boto-bucket", Key="meta")

# SigV2 clients create buckets too (botocore signs the resource `/bucket/`).
v2 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1",
                  config=Config(signature_version="s3"))
v2.create_bucket(Bucket="boto-v2")
v2.put_object(Bucket="boto-v2", Key="k", Body=b"v2")
assert v2.get_object(Bucket="boto-v2", Key="k")["Body"].read() == b"v2"
v2.delete_object(Bucket="boto-v2", Key="k")
v2.delete_bucket(Bucket="boto-v2")

# Browser form uploads (POST Object): a form signed by generate_presigned_post, posted as a
# browser would (multipart/form-data, the file last).
import urllib3

post = s3.generate_presigned_post(
    "boto-bucket", "forms/${filename}",
    Fields={"x-amz-meta-via": "boto3"},
    Conditions=[{"x-amz-meta-via": "boto3"}, ["content-length-range", 1, 1000]],
    ExpiresIn=600,
)
http = urllib3.PoolManager()
form = dict(post["fields"])
form["file"] = ("form.txt", b"posted by a form")
r = http.request("POST", post["url"], fields=form)
assert r.status == 204, (r.status, r.data)
head = s3.head_object(Bucket="boto-bucket", Key="forms/form.txt")
assert head["Metadata"] == {"via": "boto3"}, head["Metadata"]
bodies["forms/form.txt"] = b"posted by a form"
form["file"] = ("big.txt", b"x" * 1001)
r = http.request("POST", post["url"], fields=form)
assert r.status == 400 and b"EntityTooLarge" in r.data, (r.status, r.data)
expect_error("404", s3.head_object, Bucket="boto-bucket", Key="forms/big.txt")

expect_error("NoSuchKey", s3.get_object, Bucket="boto-bucket", Key="missing")
expect_error("NoSuchBucket", s3.list_objects_v2, Bucket="no-such-bucket")
expect_error("BucketNotEmpty", s3.delete_bucket, Bucket="boto-bucket")

r = s3.delete_objects(Bucket="boto-bucket", Delete={"Objects": [{"Key": k} for k in bodies]})
assert sorted(d["Key"] for d in r["Deleted"]) == sorted(bodies), r
assert s3.list_objects_v2(Bucket="boto-bucket")["KeyCount"] == 0
s3.delete_bucket(Bucket="boto-bucket")
print("ALL OK")
sys.exit(0)
