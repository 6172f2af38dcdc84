#!/usr/bin/env bash
# Makes the sc-remediator identity an owner of app registrations, so its Microsoft Graph permission
# Application.ReadWrite.OwnedBy lets it add and remove their passwords. Idempotent: apps it already
# owns are skipped. Needs the Azure CLI, signed in as an owner of each app or a (Cloud) Application
# Administrator.
#
#   scripts/add-owner.sh [--owner <identity object id>] <appId> [<appId> ...]
#   scripts/add-owner.sh [--owner <identity object id>] --from-file <file with one appId per line>
#   scripts/add-owner.sh --dry-run <appId> ...      print what would be done, change nothing
#
# Every positional argument is an app. The identity is --owner, else SC_REMEDIATOR_IDENTITY_OBJECT_ID
# (environment, or `azd env get-values`). Exit codes: 0 done, 1 an app could not be changed, 2 bad usage.
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

dry_run=false
apps=()
owner=''
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --from-file)
      [ $# -ge 2 ] || usage
      while IFS= read -r line || [ -n "$line" ]; do
        line="${line%%#*}"
        line="$(echo "$line" | tr -d '[:space:]')"
        [ -n "$line" ] && apps+=("$line")
      done <"$2"
      shift
      ;;
    --owner)
      [ $# -ge 2 ] || usage
      owner="$2"
      shift
      ;;
    -h | --help) usage ;;
    -*) usage ;;
    # An app id and an object id are both GUIDs: a position cannot tell them apart, so only
    # --owner names the owner (`add-owner.sh app1 app2` once made app2 the owner of app1).
    *) apps+=("$1") ;;
  esac
  shift
done
guid='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
if [ -z "$owner" ]; then
  owner="${SC_REMEDIATOR_IDENTITY_OBJECT_ID:-}"
  if [ -z "$owner" ] && command -v azd >/dev/null 2>&1; then
    owner="$(azd env get-values 2>/dev/null | sed -n 's/^SC_REMEDIATOR_IDENTITY_OBJECT_ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p')"
  fi
fi
[ ${#apps[@]} -gt 0 ] || usage
if [ -z "$owner" ]; then
  echo "add-owner: no identity: pass --owner <identity object id> or set SC_REMEDIATOR_IDENTITY_OBJECT_ID (every other argument is an app id)." >&2
  exit 2
fi
if ! [[ "$owner" =~ $guid ]]; then
  echo "add-owner: the identity's object id is not a GUID ('$owner')." >&2
  exit 2
fi

failed=0
for app in "${apps[@]}"; do
  if ! [[ "$app" =~ $guid ]]; then
    echo "add-owner: '$app' is not an application (client) id; skipped." >&2
    failed=1
    continue
  fi
  owners="$(az ad app owner list --id "$app" --query '[].id' -o tsv 2>/dev/null)" || {
    echo "add-owner: cannot read app $app (deleted, another tenant, or no permission to read it)." >&2
    failed=1
    continue
  }
  if printf '%s\n' "$owners" | grep -qix "$owner"; then
    echo "$app: already owned by $owner"
    continue
  fi
  if $dry_run; then
    echo "$app: would run az ad app owner add --id $app --owner-object-id $owner"
    continue
  fi
  if az ad app owner add --id "$app" --owner-object-id "$owner" >/dev/null; then
    echo "$app: owner $owner added"
  else
    echo "add-owner: adding the owner to $app failed (the signed-in user must own the app or be an Application Administrator)." >&2
    failed=1
  fi
done
exit "$failed"
