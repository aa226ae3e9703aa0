#!/bin/sh
# `make fuzz`: schemathesis against a local server on a fresh SQLite demo, as an anonymous caller,
# a member and an operator; fails on any 5xx. Bounded: MAX_TIME seconds per caller (3 callers).
# Logging out would revoke the caller's token for the rest of the run, and schemathesis cannot
# write application/toml bodies: those two operations are left out (tests cover them).
set -eu
PY=${PY:-.venv/bin/python}
ST=${ST:-$(dirname "$PY")/schemathesis}
PORT=${PORT:-8765}
MAX_TIME=${MAX_TIME:-60}
EXAMPLES=${EXAMPLES:-20}
WORK=$(mktemp -d)
export MUTUALAID_DATABASE_URL="sqlite:///$WORK/fuzz.db" MUTUALAID_DEMO=1 MUTUALAID_DATA_DIR="$WORK/data"
# Rate limits would answer most of a fuzz run with 429: off here (their own tests cover them).
export MUTUALAID_RATE_LIMIT_PER_TOKEN=0 MUTUALAID_RATE_LIMIT_PER_ADDRESS=0 \
  MUTUALAID_RATE_LIMIT_REGISTRATIONS_PER_PHONE=0 MUTUALAID_RATE_LIMIT_REGISTRATIONS_PER_ADDRESS=0
"$PY" -m mutualaid demo --database "$WORK/fuzz.db" --crowd 20 --no-serve > "$WORK/demo.txt"
"$PY" -m uvicorn mutualaid.api.app:app_from_environment --factory --port "$PORT" \
  --no-access-log > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; echo "server log: $WORK/server.log"' EXIT
sleep 4
PASSWORD=$(awk '/^ *member/ {print $5}' "$WORK/demo.txt")
# A session token; staff first get a second factor with a secret made here, and sign in with its
# code (as staff do with their authenticator app).
token() {
  "$PY" - "$1" "$PASSWORD" <<'PYTHON'
import sys
from mutualaid.db.models import Account
from mutualaid.domain.second_factors import needs_second_factor
from mutualaid.services.accounts.second_factors import current_code, enrol_with_secret, sign_in
from mutualaid.services.context import build_context
from mutualaid.settings import Settings
import pyotp
ctx = build_context(Settings())
phone, password = sys.argv[1], sys.argv[2]
with ctx.reading() as session:
    account = session.query(Account).filter_by(phone=phone).one()
code = None
if needs_second_factor(account.role):
    secret = pyotp.random_base32()
    enrol_with_secret(ctx, account.id, secret)
    code = current_code(secret)
print(sign_in(ctx, phone, password, code, "127.0.0.1").token)
PYTHON
}
MEMBER=$(token "$(awk '/^ *member/ {print $3}' "$WORK/demo.txt")")
OPERATOR=$(token "$(awk '/^ *operator/ {print $3}' "$WORK/demo.txt")")
STATUS=0
for CALLER in anonymous member operator; do
  case $CALLER in
    anonymous) AUTH="X-Fuzz-Caller: anonymous" ;;
    member) AUTH="Authorization: Bearer $MEMBER" ;;
    operator) AUTH="Authorization: Bearer $OPERATOR" ;;
  esac
  echo "== $CALLER"
  "$ST" run "http://127.0.0.1:$PORT/openapi.json" -H "$AUTH" --checks not_a_server_error \
    --max-examples "$EXAMPLES" --max-time "$MAX_TIME" --workers 2 --seed 13 \
    --generation-allow-x00 true \
    --exclude-operation-id delete_session_api_v1_sessions_current_delete \
    --exclude-operation-id publish_api_v1_plans_post --report ndjson --report-dir "$WORK/report-$CALLER" \
    || STATUS=1
done
exit $STATUS
