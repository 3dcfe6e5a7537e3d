#!/usr/bin/env bash
# Installs what `python -m interop` needs on a Debian machine; safe to run again, and quiet.
# Python packages go to ${PYTHON:-python3}'s environment: run it inside the project's venv.
set -euo pipefail
cd "$(dirname "$0")"

# Usage: setup.sh [--reference]   (--reference also installs RabbitMQ, for `python -m interop --reference`)
packages=(amqp-tools librabbitmq-client-java libslf4j-java)
[ "${1:-}" = "--reference" ] && packages+=(rabbitmq-server)
command -v javac >/dev/null || packages+=(default-jdk-headless)
command -v node >/dev/null || packages+=(nodejs npm)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node/node_modules/.package-lock.json ] || [ node/package-lock.json -nt node/node_modules/.package-lock.json ]; then
    (cd node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

"${PYTHON:-python3}" -m pip install -q --disable-pip-version-check --root-user-action=ignore pika aio-pika kombu amqp celery amqpstorm
