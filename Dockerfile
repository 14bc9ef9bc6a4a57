# syntax=docker/dockerfile:1
# deltaserve, the gateway on Node.js 24 LTS. .ci/image.sh builds this file and smoke-tests the
# image on every CI run (CPU variant, podman); README.md#deployment has the commands.
#
#   docker build -t deltaserve:0.1.0 .
#   docker run --rm -p 8080:8080 -e DELTASERVE_DEV_MODE=true deltaserve:0.1.0   # the demo zoo
#
# The image is production by default: DELTASERVE_DEV_MODE=false, so the demo configuration's
# public keys are refused until you mount your own configuration (DELTASERVE_CONFIG or
# `serve --config`) or opt in to development mode as above.
#
# Build arguments:
#   NODE_IMAGE     Node.js 24 image: both stages take node from it, the build stage npm too.
#   RUNTIME_BASE   the runtime stage's base, NODE_IMAGE by default. The CUDA variant sets a
#                  CUDA 12.x + cuDNN 9.x runtime (what onnxruntime-node 1.30's CUDA EP links),
#                  nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04, with ORT_INSTALL=cuda12; node
#                  and the uid-1000 user are added when the base lacks them. That variant needs
#                  the network to NuGet and has NOT been built in this project (no GPU, no
#                  registry images in CI).
#   ORT_INSTALL    onnxruntime-node's ONNXRUNTIME_NODE_INSTALL: skip (CPU binaries ship in the
#                  npm package) or cuda12 (downloads the CUDA EP).
#   RUNTIME_APT_PACKAGES  extra system packages for the runtime stage (e.g. libvulkan1 for a
#                  WebGPU variant); none by default.
#   VERSION, REVISION     OCI labels (.ci/image.sh passes package.json's version and the commit).
ARG NODE_IMAGE=node:24-bookworm-slim
ARG RUNTIME_BASE=${NODE_IMAGE}

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ARG ORT_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL}
# The native addons' compiler (node-gyp: python3, make, g++), in this stage only. The custom-op
# addon's ONNX Runtime headers come from Debian's libonnxruntime-dev, downloaded and unpacked by
# scripts/ort-headers.sh from the mirror this image's apt already uses (never installed).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
COPY scripts/build-native.mjs scripts/ort-headers.sh ./scripts/
# --ignore-scripts: the same result whether or not this npm runs install scripts by default; the
# scripts the image needs run explicitly: the native side kernel (it must build here, where its
# compiler is), and onnxruntime-node's CUDA download for that variant. A build host behind a
# TLS-intercepting proxy passes its CA bundle as the secret npm_ca; it is never stored.
RUN --mount=type=secret,id=npm_ca,required=false \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --no-audit --no-fund --ignore-scripts \
 && node scripts/build-native.mjs && test -f build/Release/deltaserve_side_kernel.node \
 && test -f build/Release/deltaserve_ort_custom_op.node \
 && if [ "$ORT_INSTALL" != skip ]; then node node_modules/onnxruntime-node/script/install.js; fi
COPY tsconfig.json ./
COPY src ./src
# onnxruntime-node ships every platform's binaries (≈ 290 MB); keep this one's.
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 ! -name linux -exec rm -rf {} + \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 ! -name "$(node -p process.arch)" -exec rm -rf {} + \
 && test -f "node_modules/onnxruntime-node/bin/napi-v6/linux/$(node -p process.arch)/onnxruntime_binding.node"

FROM ${RUNTIME_BASE} AS runtime
ARG RUNTIME_APT_PACKAGES=""
# A no-op on the Node image. On another base (CUDA): node from the build stage, and uid 1000
# (Ubuntu 24.04 images have `ubuntu` there; it is removed so that 1000 is `node`).
RUN --mount=type=bind,from=build,source=/usr/local/bin/node,target=/tmp/node-from-build \
    if [ ! -x /usr/local/bin/node ]; then cp /tmp/node-from-build /usr/local/bin/node; fi \
 && if [ "$(id -nu 1000 2>/dev/null)" != node ]; then \
      (userdel -r "$(id -nu 1000 2>/dev/null)" 2>/dev/null || true) \
      && groupadd -g 1000 node && useradd -u 1000 -g node -m node; \
    fi \
 && if [ -n "$RUNTIME_APT_PACKAGES" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $RUNTIME_APT_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="deltaserve" \
      org.opencontainers.image.description="Multi-model inference gateway: one resident ONNX base model, many DARE-sparsified fine-tune deltas" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /app
ENV NODE_ENV=production \
    DELTASERVE_HOST=0.0.0.0 \
    DELTASERVE_PORT=8080 \
    DELTASERVE_DEV_MODE=false \
    DELTASERVE_REGISTRY_STATE_FILE=/var/lib/deltaserve/registry-state.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/deltaserve_side_kernel.node /app/build/Release/deltaserve_ort_custom_op.node ./build/Release/
COPY licenses ./licenses
COPY package.json ./
COPY config ./config
COPY models ./models
# The only paths the gateway writes: the registry state and /tmp. With a read-only root
# filesystem mount both (the helm chart does).
RUN mkdir -p /var/lib/deltaserve && chown 1000:1000 /var/lib/deltaserve
# Numeric, so Kubernetes' runAsNonRoot can check it (uid 1000 is `node` in the Node images).
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.DELTASERVE_PORT||8080)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node runs as PID 1 without an init: the gateway handles SIGTERM and SIGINT itself (drains,
# exits 0) and starts no child processes to reap; the smoke test checks the exit.
CMD ["node", "dist/cli/bin.js", "serve"]
