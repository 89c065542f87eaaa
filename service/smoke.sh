#!/usr/bin/env bash
# Container smoke test (CI): the image becomes ready, answers one prediction, runs as non-root
# on a read-only root filesystem without capabilities, serves the serving form, prints
# the baked bundle's hash, and stops cleanly within its drain time.
set -euo pipefail
IMAGE="${1:?usage: smoke.sh IMAGE}"
PORT="${PORT:-18080}"
NAME="faultline-smoke-$$"
trap 'docker rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$NAME" --read-only --tmpfs /tmp --cap-drop ALL \
  --security-opt no-new-privileges -e FAULTLINE_DRAIN_SECONDS=5 \
  -p "127.0.0.1:${PORT}:8000" "$IMAGE" >/dev/null
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:${PORT}/readyz" >/dev/null && break
  sleep 1
done
curl -sf "http://127.0.0.1:${PORT}/readyz"; echo
body='{"product_type":"M","air_temperature_k":300.1,"process_temperature_k":310.2,"rotational_speed_rpm":1500,"torque_nm":40,"tool_wear_min":100}'
answer=$(curl -sf -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:${PORT}/v1/predict")
echo "$answer"
echo "$answer" | grep -q '"failure_probability"'
model=$(curl -sf "http://127.0.0.1:${PORT}/v1/model")
echo "$model" | grep -q '"inference_path":"serving-form-' || { echo "not the serving form: $model"; exit 1; }
hash=$(echo "$model" | sed -n 's/.*"bundle_hash":"\([0-9a-f]\{64\}\)".*/\1/p')
[ -n "$hash" ] || { echo "no bundle hash in /v1/model"; exit 1; }
echo "bundle_hash $hash (pin it with the chart's model.bundleSha256)"
uid=$(docker exec "$NAME" id -u)
[ "$uid" != "0" ] || { echo "runs as root"; exit 1; }
[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$NAME")" = "true" ]
start=$(date +%s)
docker stop -t 15 "$NAME" >/dev/null
[ "$(docker inspect -f '{{.State.ExitCode}}' "$NAME")" = "0" ] || { echo "unclean exit"; exit 1; }
echo "smoke ok: uid $uid, read-only root, stopped in $(( $(date +%s) - start )) s"
