# shellcheck shell=bash
# Shared by examples/*/build: a daemon-less build of a bootable container from a Debian-family
# archive. mmdebstrap (minbase) makes the root file system, lib/customize.sh (the same
# script its Containerfile RUNs) finishes it in a chroot, umoci writes it as a one-layer OCI image.
# No container engine, no daemon; needs root.
#
# The sourcing script sets:
#   NAME      image name for messages and the title label (debian, ubuntu)
#   SUITE     the release to bootstrap (bookworm, noble)
#   SOURCES   array of apt source lines (the first one's suite is SUITE)
#   KEYRING   (optional) keyring file or directory to check the archive's signatures with
#   HOOKS     (optional) mmdebstrap --hook-dir to use, e.g. its merged-usr hooks
#   INCLUDE   (optional) packages for the base system, comma-separated (the archive keyring, so that
#             apt inside the chroot trusts the archive too)
#   CUSTOMIZE the customize.sh to run inside the root
# and then calls: build_main "$@"

build_usage() {
    cat <<EOF
usage: $0 OUT_LAYOUT [TAG] [--push REGISTRY/REPO[:TAG]] [--insecure] [--sign-key KEY --sign-cert CERT]

Builds a bootable $NAME ($SUITE) container image into the OCI image layout directory OUT_LAYOUT
(created if missing; other tags in it are kept) under TAG (default: latest), without a container
engine: mmdebstrap + lib/customize.sh in a chroot + umoci. Needs root.

  --push REF    then copy it to a registry with skopeo (docker://REF; REF without a tag gets TAG)
  --insecure    the registry speaks plain HTTP / has an untrusted certificate (lab registries)
  --sign-key KEY --sign-cert CERT
                re-sign the image's kernel (/boot/wyrcan.kernel) with this key, for machines with
                Secure Boot on: Wyrcan's kernel kexecs only kernels signed by a key in the
                firmware's db (or MOK). Needs sbsigntool. See docs/secure-boot.md.

The settings of customize.sh are read from the environment: WYRCAN_CMDLINE, AUTOLOGIN,
ROOT_PASSWORD, KERNEL_PACKAGES, EXTRA_PACKAGES, DROP_MODULES (see customize.sh). Also:
  MIRROR, SECURITY_MIRROR  the archives to use (defaults: see the build script)
  COMPONENTS    archive components (default: main)
  KEYRING       keyring file or directory for the archive's signatures
  WORKDIR       where to build the root file system (default: /var/tmp)

Boot-test the result with Wyrcan's converter:
  wyrcan convert oci:OUT_LAYOUT:TAG --output out/
  qemu-system-x86_64 -accel tcg -m 2G -nographic -kernel out/kernel -initrd out/initrd -append "\$(cat out/cmdline)"
EOF
}

BUILD_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Temporary directories to delete on exit (--one-file-system: never follow into something still
# mounted in a chroot after a failure).
BUILD_TMPDIRS=()
build_cleanup() { local d; for d in "${BUILD_TMPDIRS[@]}"; do rm -rf --one-file-system "$d"; done; }
trap build_cleanup EXIT

# One word for sh: single-quoted, with ' written as '\''.
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

build_main() {
    local out="" tag="" push="" insecure=0 sign_key="" sign_cert=""
    while (($#)); do
        case $1 in
            -h | --help) build_usage; return 0 ;;
            --push) push=${2:?--push needs REGISTRY/REPO[:TAG]}; shift ;;
            --push=*) push=${1#--push=} ;;
            --insecure) insecure=1 ;;
            --sign-key) sign_key=${2:?--sign-key needs a file}; shift ;;
            --sign-cert) sign_cert=${2:?--sign-cert needs a file}; shift ;;
            -*) echo "$0: unknown option $1" >&2; build_usage >&2; return 2 ;;
            *) if [[ -z $out ]]; then out=$1; elif [[ -z $tag ]]; then tag=$1; else
                echo "$0: too many arguments" >&2; return 2; fi ;;
        esac
        shift
    done
    [[ -n $out ]] || { build_usage >&2; return 2; }
    tag=${tag:-latest}
    [[ -n $sign_key && -n $sign_cert || -z $sign_key && -z $sign_cert ]] || { echo "$0: --sign-key and --sign-cert go together" >&2; return 2; }
    [[ $(id -u) == 0 ]] || { echo "$0: needs root (mmdebstrap --mode=root, chroot, file ownership)" >&2; return 1; }

    local tools=(mmdebstrap umoci) missing=()
    [[ -n $push ]] && tools+=(skopeo)
    [[ -n $sign_key ]] && tools+=(sbsign)
    for t in "${tools[@]}"; do command -v "$t" >/dev/null || missing+=("${t/#sbsign/sbsigntool}"); done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null || { echo "$0: missing tools: ${missing[*]}" >&2; return 1; }
        echo "● Installing ${missing[*]}" >&2
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi

    umask 022
    local start=$SECONDS
    local root
    root=$(mktemp -d "${WORKDIR:-/var/tmp}/wyrcan-$NAME.XXXXXX")
    BUILD_TMPDIRS+=("$root")
    rmdir "$root" # mmdebstrap creates it

    # Only the settings that are set reach customize.sh (unset means "its default", empty means empty).
    local envargs="" v
    for v in WYRCAN_CMDLINE AUTOLOGIN ROOT_PASSWORD KERNEL_PACKAGES EXTRA_PACKAGES DROP_MODULES; do
        [[ -n ${!v+set} ]] && envargs+=" $v=$(shq "${!v}")"
    done

    local opts=()
    [[ -n ${KEYRING:-} ]] && opts+=(--keyring="$KEYRING")
    [[ -n ${INCLUDE:-} ]] && opts+=(--include="$INCLUDE")
    [[ -n ${HOOKS:-} ]] && opts+=(--hook-dir="$HOOKS")
    echo "● Bootstrapping $NAME $SUITE (minbase) and running customize.sh" >&2
    # shellcheck disable=SC2016 # the hooks' $1 (the root) and $WYRCAN_CUSTOMIZE expand in mmdebstrap's shell
    WYRCAN_CUSTOMIZE=$CUSTOMIZE mmdebstrap --mode=root --variant=minbase --format=directory "${opts[@]}" \
        --customize-hook='cp "$WYRCAN_CUSTOMIZE" "$1/tmp/wyrcan-customize.sh"' \
        --customize-hook="chroot \"\$1\" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb$envargs /bin/sh /tmp/wyrcan-customize.sh" \
        --customize-hook='rm -f "$1/tmp/wyrcan-customize.sh"' \
        "$SUITE" "$root" "${SOURCES[@]}" >&2
    # What a container build would not have: mmdebstrap's device nodes and the host's hostname.
    rm -rf "${root:?}"/dev/* "$root/etc/hostname"
    if [[ -n $sign_key ]]; then
        echo "● Signing the kernel for Secure Boot" >&2
        "$BUILD_LIB/../../scripts/sign-kernel" --key "$sign_key" --cert "$sign_cert" "$root/boot/$(readlink "$root/boot/wyrcan.kernel")" >&2
    fi

    echo "● Writing the OCI image $out:$tag" >&2
    [[ -f $out/index.json ]] || umoci init --layout "$out"
    umoci rm --image "$out:$tag" 2>/dev/null || true
    umoci new --image "$out:$tag"
    umoci insert --image "$out:$tag" "$root" /
    umoci config --image "$out:$tag" --os linux --architecture amd64 --config.cmd /init \
        --config.label "org.opencontainers.image.title=$NAME $SUITE for Wyrcan" \
        --config.label "org.opencontainers.image.description=bootable container: /boot/wyrcan.kernel, /init, /boot/wyrcan.cmdline"
    umoci gc --layout "$out"

    local rootsize layersize digest
    rootsize=$(du -sm --apparent-size "$root" | cut -f1)
    digest=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$out/index.json")
    layersize=$(jq -r '[.layers[].size] | add' "$out/blobs/sha256/${digest#sha256:}")
    echo "● $NAME: root file system ${rootsize} MiB, compressed layer $((layersize / 1048576)) MiB, manifest $digest ($((SECONDS - start)) s)" >&2

    if [[ -n $push ]]; then
        local ref=$push
        [[ ${ref##*/} == *:* || $ref == *@* ]] || ref+=":$tag"
        echo "● Pushing to docker://$ref" >&2
        local tls=()
        ((insecure)) && tls=(--dest-tls-verify=false)
        skopeo copy "${tls[@]}" "oci:$out:$tag" "docker://$ref" >&2
    fi
}
