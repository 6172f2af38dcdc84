#!/usr/bin/env bash
# `azd provision`, provisioned again when the only failure is Entra ID replication: the Microsoft
# Graph app role assignment of the managed identity created in the same deployment can fail with
# "Not a valid reference update" (or "... queried reference-property objects are not present")
# until the new identity has reached every Entra ID replica (microsoftgraph/msgraph-bicep-types#193;
# no replication time is documented, so the wait is generous). Any other failure is returned at
# once. Provisioning again is safe: every resource, role assignment and Graph object keeps its name.
#
#   scripts/provision.sh [azd provision options]      (npm run provision -- [options])
#
# PROVISION_ATTEMPTS (default 3) and PROVISION_RETRY_SECONDS (default 120) tune it. Exit code: azd's.
set -euo pipefail

attempts="${PROVISION_ATTEMPTS:-3}"
delay="${PROVISION_RETRY_SECONDS:-120}"
replication='Not a valid reference update|queried reference-property objects are not present'
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

for ((attempt = 1; ; attempt++)); do
  set +e
  azd provision "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] && exit 0
  if [ "$attempt" -ge "$attempts" ] || ! grep -Eq "$replication" "$log"; then
    exit "$status"
  fi
  echo "provision: Entra ID has not replicated the new identity yet (msgraph-bicep-types#193); provisioning again in ${delay}s (attempt $((attempt + 1)) of $attempts)." >&2
  sleep "$delay"
done
