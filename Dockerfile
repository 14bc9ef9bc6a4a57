# deltaserve: the gateway on the CPU by default.
#   docker build -t deltaserve .
#   docker run -p 8080:8080 deltaserve          # serves the demo zoo in development mode
# GPU image: docker build --build-arg ORT_INSTALL=cuda12 -t deltaserve:cuda . and run it with
# DELTASERVE_EXECUTION_PROVIDER=cuda on a host with CUDA 12.x and cuDNN 9.x.
# The commands below are the ones test/http/serve-process.test.ts runs outside a container.

FROM node:20-bookworm-slim AS build
WORKDIR /app
ARG ORT_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
# npm 10 in this image runs install scripts; onnxruntime-node's script honours this setting.
RUN ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL} npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    DELTASERVE_HOST=0.0.0.0 \
    DELTASERVE_PORT=8080 \
    DELTASERVE_REGISTRY_STATE_FILE=/var/lib/deltaserve/registry-state.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY models ./models
RUN mkdir -p /var/lib/deltaserve && chown node:node /var/lib/deltaserve
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/cli/bin.js", "serve"]
