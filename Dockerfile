# One image for the cluster side of llmisvc: `llmisvc controller` (the default) and `llmisvc epp`
# (the scheduler Deployments the controller creates run it with `epp` arguments).
# Build: docker build -t ghcr.io/llmisvc/llmisvc:0.1.0 .
# Node 22 (not the 20 the project also runs on): only Node >= 22.10 lets the EPP raise HTTP/2's stream-reset
# limit, which a gateway's ext_proc traffic exceeds (see src/epp/grpc-server.ts).

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --ignore-scripts

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist/src ./dist/src
COPY deploy ./deploy
COPY examples ./examples
# The scheduler Deployments the renderer writes run `llmisvc epp …` as their command: put the CLI on PATH.
RUN ln -s /app/bin/llmisvc.js /usr/local/bin/llmisvc
# The numeric uid lets Kubernetes check runAsNonRoot.
USER 1000:1000
EXPOSE 8080 9443 9002 9003 9090
ENTRYPOINT ["node", "/app/bin/llmisvc.js"]
CMD ["controller"]
