#!/usr/bin/env bash
# Regenerates src/gen from proto/ (needs protoc: apt-get install protobuf-compiler).
# The generated code is committed, so building raftkv does not need protoc.
# (src/gen/etcd/api-schema.ts alone: `npx tsc -p tsconfig.json && node scripts/gen-api-schema.mjs`.)
set -euo pipefail
cd "$(dirname "$0")/.."
# The gateway's description (not protoc's) is kept: the gateway's code needs it to compile.
schema=$(mktemp) && cp src/gen/etcd/api-schema.ts "$schema"
rm -rf src/gen && mkdir -p src/gen/etcd && cp "$schema" src/gen/etcd/api-schema.ts && rm -f "$schema"
protoc --plugin=./node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=src/gen \
  --ts_proto_opt=outputServices=grpc-js,forceLong=bigint,esModuleInterop=true,importSuffix=.js,env=node,useOptionals=messages,outputTypeRegistry=false \
  -I proto proto/etcd/kv.proto proto/etcd/auth.proto proto/etcd/rpc.proto \
  proto/etcd/v3lock.proto proto/etcd/v3election.proto proto/etcd/lease.proto \
  proto/raftkv/peer.proto proto/raftkv/member.proto proto/raftkv/entry.proto proto/raftkv/peer_maintenance.proto \
  proto/grpc/health/v1/health.proto
node scripts/gen-proto-post.mjs src/gen
# The JSON gateway's description of the same messages (needs the describer compiled).
npx tsc -p tsconfig.json
node scripts/gen-api-schema.mjs
