#!/bin/sh
# Builds a one-layer OCI image layout from Debian's busybox-static: oci-image.sh DIR [CMD]
# (the layer holds /bin/busybox and applet links; the config names linux/amd64).
set -eu
out="$1"; cmd="${2:-sh}"
work="$(mktemp -d)"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$out/blobs/sha256"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh ls cat echo sleep true false id env touch grep ln mkdir rm unshare; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" .
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
gzip -n -c "$work/layer.tar" > "$work/layer.tgz"
blob() { h="$(sha256sum "$1" | cut -d' ' -f1)"; cp "$1" "$out/blobs/sha256/$h"; echo "sha256:$h $(stat -c %s "$1")"; }
set -- $(blob "$work/layer.tgz"); layer="$1"; layer_size="$2"
printf '{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z","config":{"Env":["PATH=/bin"],"Cmd":["%s"],"Labels":{"test":"vic"}},"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"2024-01-02T03:04:05Z","created_by":"busybox-static"}]}' "$cmd" "$diff_id" > "$work/config.json"
set -- $(blob "$work/config.json"); config="$1"; config_size="$2"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
set -- $(blob "$work/manifest.json"); manifest="$1"; manifest_size="$2"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' "$manifest" "$manifest_size" > "$out/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
rm -rf "$work"
echo "$config"
