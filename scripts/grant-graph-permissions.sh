#!/usr/bin/env bash
# Grants the sc-remediator identity its Microsoft Graph application permissions without the Bicep
# Graph extension (the fallback of docs/deploy.md, step 6): Application.ReadWrite.OwnedBy, and with
# --with-policy-read also Policy.Read.All. Idempotent: existing grants are kept. Needs the Azure CLI
# signed in as a Privileged Role Administrator (or Global Administrator): granting an application
# permission is admin consent.
#
#   scripts/grant-graph-permissions.sh <identity object id> [--with-policy-read] [--dry-run]
#
# Exit codes: 0 done, 1 a grant failed, 2 bad usage.
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

principal=''
roles=('Application.ReadWrite.OwnedBy')
dry_run=false
for arg in "$@"; do
  case "$arg" in
    --with-policy-read) roles+=('Policy.Read.All') ;;
    --dry-run) dry_run=true ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) principal="$arg" ;;
  esac
done
guid='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
[[ "$principal" =~ $guid ]] || usage

graph_app_id='00000003-0000-0000-c000-000000000000' # Microsoft Graph, in every tenant and cloud
# The Graph endpoint of the signed-in cloud (https://graph.microsoft.com/ in the public cloud).
graph="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv)"
graph="${graph%/}"
graph_sp="$(az ad sp show --id "$graph_app_id" --query id -o tsv)"
existing="$(az rest --method GET --uri "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments" --query 'value[].appRoleId' -o tsv)"

failed=0
for role in "${roles[@]}"; do
  # The application permission (not the delegated scope of the same name).
  role_id="$(az ad sp show --id "$graph_app_id" --query "appRoles[?value=='$role' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
  if [ -z "$role_id" ]; then
    echo "grant-graph-permissions: Microsoft Graph has no application permission $role." >&2
    failed=1
    continue
  fi
  if printf '%s\n' "$existing" | grep -qix "$role_id"; then
    echo "$role: already granted"
    continue
  fi
  body="{\"principalId\":\"$principal\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$role_id\"}"
  if $dry_run; then
    echo "$role: would POST $graph/v1.0/servicePrincipals/$principal/appRoleAssignments $body"
    continue
  fi
  if az rest --method POST --uri "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments" \
    --headers 'Content-Type=application/json' --body "$body" >/dev/null; then
    echo "$role: granted"
  else
    echo "grant-graph-permissions: granting $role failed (needs Privileged Role Administrator)." >&2
    failed=1
  fi
done
exit "$failed"
