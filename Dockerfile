# syntax=docker/dockerfile:1
# An x0tta6bl4 node (relay, exit or SOCKS5 entry), configured from the environment
# (deploy/node/entrypoint.ts lists the variables; docs/operations.md shows examples):
#
#   docker build -t x0t-node .
#   docker run -d --name entry-1 -p 127.0.0.1:10809:10809 -v x0t:/var/lib/x0t \
#     -e NODE_ID=entry-1 -e NODE_ROLE=entry x0t-node
#   docker run -d --name relay-1 -p 9001:9001 -v x0t:/var/lib/x0t \
#     -e NODE_ID=relay-1 -e ADVERTISE_HOST=relay1.example.org -e REGION=DE x0t-node
#
# Hosts without registry access build BASE_IMAGE locally first (deploy/node/base-image.sh).
ARG BASE_IMAGE=docker.io/library/node:24-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# The lockfile covers every workspace: npm ci needs each workspace's package.json to read it.
COPY package.json package-lock.json .npmrc ./
COPY relayer/package.json relayer/package.json
COPY web/package.json web/package.json
# Only the relayer's runtime dependencies; no install scripts run. Behind a TLS-intercepting
# proxy, pass its CA for this step only (it does not stay in the image):
#   docker build --secret id=npm_ca,src=/path/to/ca.crt …
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
    && npm ci --workspace relayer --omit=dev --omit=optional --ignore-scripts --no-audit \
    && npm cache clean --force \
    && rm -rf web \
    # The node imports ESM only: drop CommonJS builds, TypeScript sources and types, source maps, docs.
    && rm -rf node_modules/viem/_cjs node_modules/viem/_types node_modules/viem/src \
              node_modules/ox/_cjs node_modules/ox/_types node_modules/ox/src \
    && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
              -o -iname 'README*' -o -iname 'CHANGELOG*' \) -delete
COPY relayer/src relayer/src
COPY deploy/node/entrypoint.ts deploy/node/entrypoint.ts

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="x0tta6bl4 node" \
      org.opencontainers.image.source="https://github.com/x0tta6bl4/x0tta6bl4" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production \
    X0T_DATA=/var/lib/x0t \
    LISTEN_HOST=0.0.0.0 \
    SOCKS_HOST=0.0.0.0 \
    X0T_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=root:root /app /app
# The node writes only its keys and descriptors, under X0T_DATA, as the unprivileged `node` user.
RUN mkdir -p /var/lib/x0t && chown node:node /var/lib/x0t && chmod 0750 /var/lib/x0t
USER node
VOLUME ["/var/lib/x0t"]
EXPOSE 9001 10809
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/deploy/node/entrypoint.ts"]
