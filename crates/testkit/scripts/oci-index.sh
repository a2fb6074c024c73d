#!/bin/sh
# Turns the one-image layout made by oci-image.sh into a two-platform image index:
# oci-index.sh DIR  (linux/arm64 first, then the original linux/amd64; same layer).
set -eu
out="$1"
blob() { h="$(sha256sum "$1" | cut -d' ' -f1)"; cp "$1" "$out/blobs/sha256/$h"; echo "sha256:$h $(stat -c %s "$1")"; }
work="$(mktemp -d)"
amd_manifest="$(sed 's/.*"digest":"\(sha256:[0-9a-f]*\)".*/\1/' "$out/index.json")"
amd_size="$(sed 's/.*"size":\([0-9]*\).*/\1/' "$out/index.json")"
manifest="$(cat "$out/blobs/sha256/${amd_manifest#sha256:}")"
config="$(echo "$manifest" | sed 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]*\)".*/\1/')"
sed 's/"architecture":"amd64"/"architecture":"arm64"/; s/"Labels":{"test":"vic"}/"Labels":{"test":"vic-arm64"}/' "$out/blobs/sha256/${config#sha256:}" > "$work/config.json"
set -- $(blob "$work/config.json"); arm_config="$1"; arm_config_size="$2"
echo "$manifest" | sed "s/$config/$arm_config/; s/\"size\":[0-9]*,\"digest\":\"$arm_config\"/&/" > "$work/manifest.json"
# Fix the config size inside the copied manifest.
sed -i "s/\(\"config\":{\"mediaType\":\"[^\"]*\",\"digest\":\"$arm_config\",\"size\":\)[0-9]*/\1$arm_config_size/" "$work/manifest.json"
set -- $(blob "$work/manifest.json"); arm_manifest="$1"; arm_size="$2"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' "$arm_manifest" "$arm_size" "$amd_manifest" "$amd_size" > "$work/index.json"
set -- $(blob "$work/index.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' "$1" "$2" > "$out/index.json"
rm -rf "$work"
echo "$arm_config"
