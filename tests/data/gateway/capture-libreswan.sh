#!/bin/bash
# capture-libreswan.sh - capture REAL libreswan pluto log lines (both sides).
#
# libreswan conflicts with the installed strongSwan packages, so it is NOT
# installed: the .debs (libreswan + the few libraries missing on this system)
# are fetched with `apt-get download` and unpacked with `dpkg -x` under
# /tmp/lsw/root, and pluto runs from there (LD_LIBRARY_PATH). Nothing is
# installed into the system and no service is enabled.
#
# Topology is the same as capture.sh: tw-aws veth-aws 192.0.2.10/24 <-> tw-cgw
# veth-cgw 198.51.100.20/24, inside 169.254.10.1/30 and 169.254.10.2/30.
# Both ends run pluto (connection "aws-tunnel1" / "vpn-tunnel1"), cgw initiates.
#
# Run as root: sudo ./capture-libreswan.sh      (bounded by timeout 300)

set -u
if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
if [ -z "${TW_CAPTURE_INNER:-}" ]; then
    export TW_CAPTURE_INNER=1
    exec timeout -k 10 300 "$0" "$@"
fi

OUT="${TW_OUT:-$(cd "$(dirname "$0")" && pwd)}/libreswan"
LSW=/tmp/lsw
ROOT=$LSW/root
WORK=/tmp/tw-capture-lsw
NS_AWS=tw-aws
NS_CGW=tw-cgw
AWS_OUT=192.0.2.10
CGW_OUT=198.51.100.20
AWS_IN=169.254.10.1
CGW_IN=169.254.10.2
PSK='tunnelwatch-test-psk-0123456789'
PIDS=()
export LD_LIBRARY_PATH=$ROOT/usr/lib/x86_64-linux-gnu
PLUTO=$ROOT/usr/libexec/ipsec/pluto
WHACK=$ROOT/usr/libexec/ipsec/whack
CERTUTIL=$ROOT/usr/bin/certutil
PY=/usr/bin/python3
SYSLOG_RX='
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
try: os.unlink(path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path); os.chmod(path, 0o666)
with open(out, "wb", buffering=0) as f:
    while True:
        d = s.recv(65536)
        f.write(d if d.endswith(b"\n") else d + b"\n")
'

log() { echo "[capture-libreswan $(date +%T)] $*" >&2; }

kill_pid() {
    local p=$1 i
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
}
cleanup() {
    local p ns
    for p in "${PIDS[@]}"; do kill_pid "$p"; done
    PIDS=()
    for ns in $NS_AWS $NS_CGW; do
        for p in $(ip netns pids $ns 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del $ns 2>/dev/null
    done
}
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'log interrupted; exit 1' INT TERM

wait_grep() {
    local f=$1 re=$2 t=$3 i
    for i in $(seq 1 $((t * 5))); do
        grep -Eq -- "$re" "$f" 2>/dev/null && return 0
        sleep 0.2
    done
    log "timeout ($t s) waiting for /$re/ in $f"; return 1
}
wait_path() {
    local i
    for i in $(seq 1 $(($2 * 10))); do [ -e "$1" ] && return 0; sleep 0.1; done
    log "timeout waiting for $1"; return 1
}

fetch_libreswan() {
    [ -x "$PLUTO" ] && return 0
    mkdir -p "$LSW/debs" && chmod 777 "$LSW/debs"
    (cd "$LSW/debs" && apt-get download libreswan libldns3 libevent-pthreads-2.1-7 libnss3-tools) || return 1
    for d in "$LSW"/debs/*.deb; do dpkg -x "$d" "$ROOT"; done
}

setup_net() {
    cleanup
    ip netns add $NS_AWS; ip netns add $NS_CGW
    ip link add veth-aws netns $NS_AWS type veth peer name veth-cgw netns $NS_CGW
    ip -n $NS_AWS link set lo up; ip -n $NS_CGW link set lo up
    ip -n $NS_AWS addr add $AWS_OUT/24 dev veth-aws
    ip -n $NS_AWS addr add $AWS_IN/30 dev veth-aws
    ip -n $NS_CGW addr add $CGW_OUT/24 dev veth-cgw
    ip -n $NS_CGW addr add $CGW_IN/30 dev veth-cgw
    ip -n $NS_AWS link set veth-aws up; ip -n $NS_CGW link set veth-cgw up
    ip -n $NS_AWS route add 198.51.100.0/24 dev veth-aws
    ip -n $NS_CGW route add 192.0.2.0/24 dev veth-cgw
}

# knobs: IKEV (ikev2=yes|no), AWS_PSK, CGW_PSK
pluto_start() { # side scenario
    local side=$1 scn=$2 d=$WORK/$1 ns me peer lsub rsub conn psk
    if [ "$side" = aws ]; then
        ns=$NS_AWS me=$AWS_OUT peer=$CGW_OUT lsub=$AWS_IN/32 rsub=$CGW_IN/32 conn=aws-tunnel1 psk=$AWS_PSK
    else
        ns=$NS_CGW me=$CGW_OUT peer=$AWS_OUT lsub=$CGW_IN/32 rsub=$AWS_IN/32 conn=vpn-tunnel1 psk=$CGW_PSK
    fi
    rm -rf "$d"; mkdir -p "$d/nss"
    local logcfg="    logfile=$OUT/$scn.$side.log
    logappend=no" logflags="--logfile $OUT/$scn.$side.log --log-no-append" devlog=":"
    rm -f "$OUT/$scn.$side.syslog"
    if [ "$LOGMODE" = syslog ]; then
        # no logfile: pluto uses syslog(3) -> private /dev/log -> python receiver
        logcfg="    logfile=" logflags=""
        $PY -c "$SYSLOG_RX" "$d/devlog" "$OUT/$scn.$side.syslog" &
        PIDS+=($!)
        wait_path "$d/devlog" 5 || return 1
        devlog="mount -t tmpfs -o mode=755 tmpfs /dev && mknod -m 666 /dev/null c 1 3 &&
                mknod -m 666 /dev/zero c 1 5 && mknod -m 666 /dev/random c 1 8 &&
                mknod -m 666 /dev/urandom c 1 9 && ln -s $d/devlog /dev/log"
    fi
    $CERTUTIL -N -d "sql:$d/nss" --empty-password
    cat >"$d/ipsec.conf" <<EOF
config setup
$logcfg
    plutodebug=none
    ikev1-policy=accept

conn $conn
    left=$me
    leftid=$me
    leftsubnet=$lsub
    right=$peer
    rightid=$peer
    rightsubnet=$rsub
    authby=secret
    ikev2=$IKEV
    ike=aes256-sha2_256-modp2048
    esp=aes256-sha2_256
    ikelifetime=1h
    salifetime=1h
    dpddelay=2
    dpdtimeout=6
    dpdaction=clear
    auto=add
EOF
    echo "$me $peer : PSK \"$psk\"" >"$d/ipsec.secrets"
    chmod 600 "$d/ipsec.secrets"
    rm -f "$OUT/$scn.$side.log"
    # pluto execs the hard-coded /usr/libexec/ipsec/addconn: give it one in a
    # private mount namespace (tmpfs over /usr/libexec, symlink to the unpacked tree)
    ip netns exec $ns unshare -m --propagation private bash -c "
        $devlog &&
        mount -t tmpfs tmpfs /usr/libexec &&
        ln -s $ROOT/usr/libexec/ipsec /usr/libexec/ipsec &&
        exec $PLUTO --nofork --config $d/ipsec.conf --rundir $d --dumpdir $d \
            --nssdir $d/nss --ipsecdir $d --secretsfile $d/ipsec.secrets \
            --no-dnssec $logflags" \
        </dev/null >"$d/pluto.stderr" 2>&1 &
    PIDS+=($!)
    wait_path "$d/pluto.ctl" 10 || { cat "$d/pluto.stderr" >&2; return 1; }
    ip netns exec $ns $WHACK --ctlsocket "$d/pluto.ctl" --rereadsecrets >/dev/null 2>&1
}

wh() { local side=$1 ns; shift; [ "$side" = aws ] && ns=$NS_AWS || ns=$NS_CGW
       ip netns exec $ns $WHACK --ctlsocket "$WORK/$side/pluto.ctl" "$@"; }

scenario() { # name aws-regex
    local s=$1
    log "libreswan scenario $s"
    setup_net
    { pluto_start aws $s && pluto_start cgw $s; } || { cleanup; return; }
    sleep 1
    timeout 20 ip netns exec $NS_CGW $WHACK --ctlsocket "$WORK/cgw/pluto.ctl" \
        --name vpn-tunnel1 --initiate >"$OUT/$s.cgw.whack-initiate.txt" 2>&1
    local f="$OUT/$s.aws.log"; [ "$LOGMODE" = syslog ] && f="$OUT/$s.aws.syslog"
    wait_grep "$f" "$2" 20
    sleep 2
    wh cgw --name vpn-tunnel1 --terminate >/dev/null 2>&1
    sleep 2
    wh cgw --shutdown >/dev/null 2>&1
    wh aws --shutdown >/dev/null 2>&1
    sleep 1
    cleanup
}

mkdir -p "$OUT" "$WORK"
fetch_libreswan || { log "cannot fetch libreswan"; exit 1; }
export LOGMODE=file
# kernel has no ESP: the IKE SA comes up, the Child SA install fails (errno 93)
IKEV=yes AWS_PSK=$PSK CGW_PSK=$PSK scenario ikev2-ike-up-child-install-failed 'Protocol not supported|established Child SA|ESTABLISHED_CHILD'
IKEV=yes AWS_PSK=$PSK CGW_PSK=wrong-psk-on-customer-side scenario ikev2-psk-mismatch 'AUTHENTICATION_FAILED|authentication failed'
IKEV=no  AWS_PSK=$PSK CGW_PSK=$PSK scenario ikev1-ike-up-child-install-failed 'Protocol not supported|IPsec SA established|ISAKMP SA established'
IKEV=no  AWS_PSK=$PSK CGW_PSK=wrong-psk-on-customer-side scenario ikev1-psk-mismatch 'malformed|INVALID|authentication|decrypt|retransmit'
export LOGMODE=syslog
IKEV=yes AWS_PSK=$PSK CGW_PSK=wrong-psk-on-customer-side scenario ikev2-psk-mismatch-syslog 'AUTHENTICATION_FAILED|authentication failed'
log done
