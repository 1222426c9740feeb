#!/usr/bin/env bash
# Walks Cairn with the aws-cli, at its default settings (checksums, signing, chunking).
# Needs: CAIRN_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, WORK_DIR.
set -euo pipefail
aws() { command aws --endpoint-url "$CAIRN_ENDPOINT" "$@"; }
cd "$WORK_DIR"
fail() { echo "FAIL: $*" >&2; exit 1; }

aws s3 mb s3://cli-bucket
aws s3 ls | grep -q cli-bucket || fail "bucket not listed"

printf 'hello from the cli\n' > small.txt
head -c 3000000 /dev/urandom > medium.bin          # below the cli's multipart threshold
: > empty.txt
KEY='odd &+-é" name with spaces.txt'
aws s3 cp small.txt s3://cli-bucket/docs/small.txt
aws s3 cp medium.bin s3://cli-bucket/data/medium.bin
aws s3 cp empty.txt s3://cli-bucket/empty.txt
aws s3 cp small.txt "s3://cli-bucket/$KEY"

aws s3 ls s3://cli-bucket/ > top.txt
grep -q 'PRE docs/' top.txt || fail "no docs/ prefix"
grep -q 'PRE data/' top.txt || fail "no data/ prefix"
aws s3 ls --recursive s3://cli-bucket/ | grep -q 'odd &+-é" name with spaces.txt' || fail "odd key not listed"

aws s3 cp s3://cli-bucket/data/medium.bin back.bin
cmp medium.bin back.bin || fail "medium differs"
aws s3 cp "s3://cli-bucket/$KEY" back.txt
cmp small.txt back.txt || fail "odd key differs"
aws s3 cp s3://cli-bucket/empty.txt back-empty.txt
[ ! -s back-empty.txt ] || fail "empty not empty"

# Above the cli's 8 MiB threshold: a multipart upload (8 MiB parts) with default settings.
head -c 22020103 /dev/urandom > big.bin
aws s3 cp big.bin s3://cli-bucket/data/big.bin
aws s3api head-object --bucket cli-bucket --key data/big.bin > big-head.json
grep -q '"ContentLength": 22020103' big-head.json || fail "big length: $(cat big-head.json)"
grep -q '"ETag": "\\"[0-9a-f]*-3\\""' big-head.json || fail "big not multipart: $(cat big-head.json)"
aws s3 cp s3://cli-bucket/data/big.bin big-back.bin
cmp big.bin big-back.bin || fail "multipart upload differs"
# Server-side copy (multipart copy with UploadPartCopy ranges above the threshold).
aws s3 cp s3://cli-bucket/data/big.bin s3://cli-bucket/copies/big.bin
aws s3 cp s3://cli-bucket/copies/big.bin big-copy.bin
cmp big.bin big-copy.bin || fail "server-side copy differs"
aws s3 cp s3://cli-bucket/docs/small.txt s3://cli-bucket/copies/small.txt
aws s3 cp s3://cli-bucket/copies/small.txt small-copy.txt
cmp small.txt small-copy.txt || fail "small copy differs"
aws s3api list-multipart-uploads --bucket cli-bucket > uploads.json
if grep -q UploadId uploads.json; then fail "uploads left behind: $(cat uploads.json)"; fi

aws s3api head-object --bucket cli-bucket --key docs/small.txt > head.json
grep -q '"ContentLength": 19' head.json || fail "head length: $(cat head.json)"
aws s3api put-object --bucket cli-bucket --key meta.txt --body small.txt \
  --content-type text/plain --metadata color=blue > /dev/null
aws s3api head-object --bucket cli-bucket --key meta.txt | grep -q '"color": "blue"' || fail "metadata"
aws s3api get-object --bucket cli-bucket --key data/medium.bin --range bytes=10-19 range.bin > /dev/null
cmp <(tail -c +11 medium.bin | head -c 10) range.bin || fail "range differs"
aws s3api list-objects-v2 --bucket cli-bucket --prefix docs/ | grep -q '"Key": "docs/small.txt"' || fail "list v2"
aws s3api list-objects --bucket cli-bucket --delimiter / | grep -q '"Prefix": "data/"' || fail "list v1"
aws s3api get-bucket-location --bucket cli-bucket > /dev/null

if aws s3api get-object --bucket cli-bucket --key missing out.bin 2> err.txt; then fail "missing key served"; fi
grep -q NoSuchKey err.txt || fail "expected NoSuchKey: $(cat err.txt)"
if aws s3 rb s3://cli-bucket 2> err.txt; then fail "non-empty bucket removed"; fi
grep -q BucketNotEmpty err.txt || fail "expected BucketNotEmpty: $(cat err.txt)"

aws s3api delete-objects --bucket cli-bucket \
  --delete '{"Objects":[{"Key":"meta.txt"},{"Key":"empty.txt"}]}' | grep -q '"Key": "meta.txt"' || fail "delete-objects"
aws s3 rm "s3://cli-bucket/$KEY"
aws s3 rm --recursive s3://cli-bucket/
aws s3 rb s3://cli-bucket
if aws s3 ls | grep -q cli-bucket; then fail "bucket still listed"; fi

# Versioning and object tagging.
aws s3 mb s3://cli-versions
aws s3api get-bucket-versioning --bucket cli-versions > vconf.json
if grep -q Status vconf.json; then fail "new bucket versioned: $(cat vconf.json)"; fi
aws s3api put-bucket-versioning --bucket cli-versions --versioning-configuration Status=Enabled
aws s3api get-bucket-versioning --bucket cli-versions | grep -q '"Status": "Enabled"' || fail "versioning not enabled"
printf 'first\n' > v1.txt
printf 'second version\n' > v2.txt
V1=$(aws s3api put-object --bucket cli-versions --key doc.txt --body v1.txt --query VersionId --output text)
V2=$(aws s3api put-object --bucket cli-versions --key doc.txt --body v2.txt --query VersionId --output text)
[ -n "$V1" ] && [ "$V1" != "None" ] && [ "$V1" != "$V2" ] || fail "version ids: $V1 $V2"
aws s3api get-object --bucket cli-versions --key doc.txt --version-id "$V1" v1-back.txt > /dev/null
cmp v1.txt v1-back.txt || fail "old version differs"
aws s3api delete-object --bucket cli-versions --key doc.txt | grep -q '"DeleteMarker": true' || fail "no delete marker"
aws s3api list-object-versions --bucket cli-versions > versions.json
grep -q "\"VersionId\": \"$V1\"" versions.json || fail "v1 not listed: $(cat versions.json)"
grep -q '"DeleteMarkers"' versions.json || fail "marker not listed: $(cat versions.json)"
aws s3api put-object-tagging --bucket cli-versions --key doc.txt --version-id "$V2" \
  --tagging 'TagSet=[{Key=team,Value=data}]'
aws s3api get-object-tagging --bucket cli-versions --key doc.txt --version-id "$V2" | grep -q '"Value": "data"' || fail "tags"
if aws s3 rb s3://cli-versions 2> err.txt; then fail "bucket with versions removed"; fi
grep -q BucketNotEmpty err.txt || fail "expected BucketNotEmpty: $(cat err.txt)"
aws s3api list-object-versions --bucket cli-versions --query '[Versions[].VersionId, DeleteMarkers[].VersionId][]' --output text | tr '\t' '\n' |
  while read -r id; do aws s3api delete-object --bucket cli-versions --key doc.txt --version-id "$id" > /dev/null; done
aws s3 rb s3://cli-versions
echo "ALL OK"
