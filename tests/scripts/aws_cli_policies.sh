#!/usr/bin/env bash
# Access policies with the aws-cli and curl, as an operator sets them up: a backup key that
# may only write one prefix (made by the caller with `cairn key create --policy`), a bucket
# readable anonymously from this machine only, and Block Public Access refusing or ignoring
# a public policy.
# Needs: CAIRN_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (root), RESTIC_ACCESS_KEY,
# RESTIC_SECRET_KEY, WORK_DIR.
set -euo pipefail
aws() { command aws --endpoint-url "$CAIRN_ENDPOINT" "$@"; }
cd "$WORK_DIR"
fail() { echo "FAIL: $*" >&2; exit 1; }
as_restic() { AWS_ACCESS_KEY_ID=$RESTIC_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RESTIC_SECRET_KEY aws "$@"; }
# The command must fail with AccessDenied.
denied() {
  local out
  if out=$("$@" 2>&1); then fail "allowed: $*"; fi
  grep -q -e AccessDenied -e Forbidden <<<"$out" || fail "not AccessDenied: $* -> $out"
}
status_of() { curl -s -o /dev/null -w '%{http_code}' "$1"; }

# The backup key: PutObject on backups/restic/* and nothing else. The bucket owner owns
# whatever lands in the bucket, so the operator reads the backups back.
aws s3api create-bucket --bucket backups --object-ownership BucketOwnerEnforced
aws s3 mb s3://other
echo "snapshot 1" > snap.txt
as_restic s3 cp snap.txt s3://backups/restic/snap-1
denied as_restic s3 cp s3://backups/restic/snap-1 got.txt
denied as_restic s3 ls s3://backups/
denied as_restic s3api delete-object --bucket backups --key restic/snap-1
denied as_restic s3 cp snap.txt s3://backups/elsewhere/x
denied as_restic s3 cp snap.txt s3://other/restic/x
aws s3 cp s3://backups/restic/snap-1 got.txt
cmp snap.txt got.txt || fail "the backup differs"

# A bucket readable anonymously from 127.0.0.1 only.
aws s3 mb s3://site
echo '<h1>hello</h1>' > index.html
aws s3 cp index.html s3://site/index.html
[ "$(status_of "$CAIRN_ENDPOINT/site/index.html")" = 403 ] || fail "anonymous GET before any policy"
cat > local.json <<'JSON'
{"Version":"2012-10-17","Statement":[{"Sid":"ThisMachine","Effect":"Allow","Principal":"*",
 "Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*",
 "Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}}]}
JSON
aws s3api put-bucket-policy --bucket site --policy file://local.json
curl -sf "$CAIRN_ENDPOINT/site/index.html" -o fetched.html || fail "anonymous GET refused"
cmp index.html fetched.html || fail "anonymous GET differs"
aws s3api get-bucket-policy --bucket site | grep -q ThisMachine || fail "policy not read back"
aws s3api get-bucket-policy-status --bucket site | grep -q '"IsPublic": false' \
  || fail "a policy pinned to an address is not public"
# Malformed policies are refused with a reason.
echo '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}' > bad.json
out=$(aws s3api put-bucket-policy --bucket site --policy file://bad.json 2>&1) && fail "malformed policy accepted"
grep -q MalformedPolicy <<<"$out" || fail "not MalformedPolicy: $out"

# A public policy works for anyone ...
cat > public.json <<'JSON'
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
 "Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}
JSON
aws s3api put-bucket-policy --bucket site --policy file://public.json
aws s3api get-bucket-policy-status --bucket site | grep -q '"IsPublic": true' || fail "public policy not public"
[ "$(status_of "$CAIRN_ENDPOINT/site/index.html")" = 200 ] || fail "public policy refused"
# ... until Block Public Access ignores it (RestrictPublicBuckets) ...
aws s3api put-public-access-block --bucket site \
  --public-access-block-configuration BlockPublicPolicy=true,RestrictPublicBuckets=true
[ "$(status_of "$CAIRN_ENDPOINT/site/index.html")" = 403 ] || fail "RestrictPublicBuckets ignored"
# ... and refuses it as a new policy (BlockPublicPolicy); the pinned one is still fine.
denied aws s3api put-bucket-policy --bucket site --policy file://public.json
aws s3api put-bucket-policy --bucket site --policy file://local.json
[ "$(status_of "$CAIRN_ENDPOINT/site/index.html")" = 200 ] || fail "pinned policy refused under BPA"
aws s3api get-public-access-block --bucket site | grep -q '"BlockPublicPolicy": true' || fail "BPA not read back"
echo "ALL OK"
