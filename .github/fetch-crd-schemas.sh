#!/usr/bin/env bash
# Puts the CRD JSON schemas the chart tests use where a developer machine has them
# (../shared/schemas, beside the checkout), from datreeio/CRDs-catalog at $CRDS_CATALOG.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CRDS_CATALOG:?set CRDS_CATALOG to the raw base URL of the catalog}"
destination=../shared/schemas
for file in \
    serving.knative.dev/service_v1.json \
    monitoring.coreos.com/servicemonitor_v1.json \
    monitoring.coreos.com/prometheusrule_v1.json \
    monitoring.coreos.com/podmonitor_v1.json; do
    if [ ! -s "$destination/$file" ]; then
        mkdir -p "$destination/$(dirname "$file")"
        curl --fail --silent --show-error --location --retry 3 -o "$destination/$file" "$CRDS_CATALOG/$file"
    fi
done
